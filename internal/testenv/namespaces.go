package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/render"
)

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a fresh namespace for the test, named after it, and
// deletes it when the test ends.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := base + "-" + hex.EncodeToString(suffix)
	cs := c.Clientset(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("testenv: create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		// The test's context is done by now; the namespace controller
		// finishes the deletion in the background.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return name
}

// RestrictedConfig creates a ServiceAccount in namespace, bound there to a
// Role with the given rules, and returns a config that authenticates as it
// with a token: RBAC denials in tests are then the apiserver's own.
func (c *Cluster) RestrictedConfig(t testing.TB, namespace string, rules ...rbacv1.PolicyRule) *rest.Config {
	t.Helper()
	ctx := t.Context()
	cs := c.Clientset(t)
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "restricted-" + hex.EncodeToString(suffix)
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("testenv: create service account %s/%s: %v", namespace, name, err)
	}
	if _, err := cs.RbacV1().Roles(namespace).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("testenv: create role %s/%s: %v", namespace, name, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("testenv: create role binding %s/%s: %v", namespace, name, err)
	}
	expiry := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testenv: token for %s/%s: %v", namespace, name, err)
	}
	return &rest.Config{
		Host:            c.host,
		BearerToken:     tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.ca.CertPEM},
		QPS:             200,
		Burst:           400,
	}
}

// StopAPIServer kills the kube-apiserver process (as a crash would) and
// leaves the other components running.
func (c *Cluster) StopAPIServer(t testing.TB) {
	t.Helper()
	c.apiMu.Lock()
	defer c.apiMu.Unlock()
	c.api.kill()
}

// StartAPIServer starts the kube-apiserver again on the same address and
// waits until it is ready.
func (c *Cluster) StartAPIServer(t testing.TB) {
	t.Helper()
	c.apiMu.Lock()
	defer c.apiMu.Unlock()
	if done, _ := c.api.exited(); !done {
		return
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := c.api.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := c.poll(ctx, "kube-apiserver ready", func(ctx context.Context) (bool, error) {
		return c.apiReady(ctx) == nil, nil
	}); err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
}

// Main starts a cluster for a test package, stores it in *env, runs the
// tests and stops the cluster. When a test fails the component logs are
// kept and their folder is printed. Use it from TestMain:
//
//	var env *testenv.Cluster
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
func Main(m *testing.M, env **Cluster) int {
	// A test binary that runs an agent is also its render worker (see
	// render.Options.WorkerPath): started as one, it renders and exits.
	if render.IsWorker() {
		return render.ServeWorker()
	}
	// testing.Verbose needs the flags, which m.Run would parse later.
	if !flag.Parsed() {
		flag.Parse()
	}
	// Generous: on a fresh machine this includes building the programs.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := Start(ctx, Options{})
	if err != nil {
		fmt.Printf("testenv: start control plane: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("testenv: control plane ready in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), c.dir)
	}
	*env = c
	code := m.Run()
	RemoveBatonBinary()
	if code != 0 {
		c.KeepLogs()
		fmt.Printf("testenv: control plane logs kept in %s\n", c.dir)
	}
	c.Stop()
	return code
}
