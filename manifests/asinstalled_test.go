package manifests_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-gitops/baton/internal/events"
	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/internal/testenv/prometheus"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// rbacVariant is one way to install Baton's RBAC: a kustomize variant of
// manifests/ and what its instructions tell the user to do by hand.
type rbacVariant struct {
	name string
	// components make the variant (paths relative to manifests/).
	components []string
	// deployerAccounts: the instructions create the baton-deployer
	// ServiceAccount in every namespace an environment applies to and bind
	// it to the baton-deployer ClusterRole there (environments impersonate it).
	deployerAccounts bool
	// bindAgent, when set, is the ClusterRole the instructions say to bind
	// to the agent's own ServiceAccount in every such namespace.
	bindAgent string
	// config are the edits of baton.yaml the variant's instructions ask for.
	config []configEdit
}

// runAsAgent is the configuration of variants whose environments run as
// the agent itself: no account required, none named.
var runAsAgent = []configEdit{
	{path: []string{"agent"}, field: "requireServiceAccount", value: "false"},
	{path: []string{"agent"}, field: "defaultServiceAccount", remove: true},
	{path: []string{"environments", "[name=dev]"}, field: "serviceAccount", remove: true},
}

// rbacVariants are the RBAC variants the installed agent is run under, one
// entry per kustomize variant: a new variant is a new entry.
var rbacVariants = []rbacVariant{
	{name: "impersonation (default)", deployerAccounts: true},
	{name: "namespaced, no impersonation", components: []string{"components/namespaced-rbac"}, bindAgent: "baton-deployer", config: runAsAgent},
	{name: "cluster-wide", components: []string{"components/cluster-wide-rbac"}, config: runAsAgent},
}

// everyComponent is installed with every RBAC variant.
var everyComponent = []string{"components/monitoring"}

// TestInstalledAgentRuns installs manifests/ as a user does (kubectl apply
// -k, with each RBAC variant and every other component), creates the
// Secrets baton.yaml names, and then runs the `baton agent` process as the
// installed Deployment would run it in one of its pods: the container's
// arguments and environment, the generated ConfigMap's baton.yaml as its
// configuration (with the user's edits: the repository's URL and user,
// the environments' namespaces, a short poll interval, a free port), the
// Secrets as files, and a token of the installed ServiceAccount bound to
// that pod as its only credential. Against a repository on the local git
// server it must take the Lease, sync, prune, record Events and serve
// /readyz and /metrics; on SIGTERM it must stop cleanly and give the Lease
// away. That proves the install's RBAC and configuration, not only that
// they parse.
func TestInstalledAgentRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the agent once per RBAC variant")
	}
	ctx := t.Context()
	a := newApplier(t, env.Config())
	cs := env.Clientset(t)
	applyOperatorCRDs(ctx, t, a)
	bin := testenv.BatonBinary(t)
	srv := gitserver.Start(t, gitserver.Options{})

	for _, v := range rbacVariants {
		t.Run(v.name, func(t *testing.T) {
			objs := build(t, append(slices.Clone(v.components), everyComponent...)...)
			a.apply(ctx, t, objs)
			removeOtherVariants(t, a, objs)
			createSecrets(t, cs, srv.Token)
			waitDeploymentAvailable(t, cs, "baton-system", "baton")
			runInstalled(t, cs, bin, srv, v)
		})
	}
}

// applyOperatorCRDs applies the Prometheus Operator's CRDs, from its Go
// module, so that the monitoring component applies against real schemas.
func applyOperatorCRDs(ctx context.Context, t *testing.T, a *applier) {
	t.Helper()
	for _, plural := range []string{"servicemonitors", "prometheusrules"} {
		path, err := prometheus.OperatorCRD(ctx, plural)
		if err != nil {
			t.Fatalf("prometheus-operator CRD %s: %v", plural, err)
		}
		a.apply(ctx, t, readYAMLFile(t, path))
	}
}

// createSecrets creates the Secrets manifests/baton.yaml names, as its
// comments tell the user to: the git token (the git server's), a forge
// token and a webhook secret (unused by the test, but part of the install).
func createSecrets(t *testing.T, cs kubernetes.Interface, gitToken string) {
	t.Helper()
	for name, data := range map[string]map[string]string{
		"baton-git":     {"token": gitToken + "\n"},
		"baton-forge":   {"token": randomHex(t)},
		"baton-webhook": {"secret": randomHex(t)},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "baton-system"}, StringData: data}
		_ = cs.CoreV1().Secrets("baton-system").Delete(t.Context(), name, metav1.DeleteOptions{})
		if _, err := cs.CoreV1().Secrets("baton-system").Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cs.CoreV1().Secrets("baton-system").Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// rbacKinds are the kinds a variant differs in.
var rbacKinds = []struct{ kind, resource string }{
	{"ClusterRole", "clusterroles"}, {"ClusterRoleBinding", "clusterrolebindings"},
	{"Role", "roles"}, {"RoleBinding", "rolebindings"},
}

// removeOtherVariants deletes the install's RBAC objects that the applied
// build does not hold — another variant's, applied before — as `kubectl
// apply --prune -l app.kubernetes.io/part-of=baton` would: each variant
// then runs with its own rights only.
func removeOtherVariants(t *testing.T, a *applier, objs []*unstructured.Unstructured) {
	t.Helper()
	want := map[string]bool{}
	for _, o := range objs {
		want[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
	}
	for _, k := range rbacKinds {
		list, err := a.dyn.Resource(rbacv1.SchemeGroupVersion.WithResource(k.resource)).List(t.Context(),
			metav1.ListOptions{LabelSelector: "app.kubernetes.io/part-of=baton"})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			if !want[k.kind+"/"+o.GetNamespace()+"/"+o.GetName()] {
				ri := a.dyn.Resource(rbacv1.SchemeGroupVersion.WithResource(k.resource)).Namespace(o.GetNamespace())
				if err := ri.Delete(t.Context(), o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					t.Fatal(err)
				}
			}
		}
	}
}

// variantRepo is the deployment repository of one run: liveRepo's base
// and overlays, plus a file naming the variant so that each run's commits
// (and the Events that carry them) are its own.
func variantRepo(v rbacVariant) map[string]string {
	files := liveRepo()
	files["base/variant.txt"] = v.name + "\n"
	return files
}

func runInstalled(t *testing.T, cs kubernetes.Interface, bin string, srv *gitserver.Server, v rbacVariant) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	repo := srv.CreateRepo(t, "deploy-"+strconv.Itoa(slices.IndexFunc(rbacVariants, func(x rbacVariant) bool { return x.name == v.name })),
		variantRepo(v))
	head := repo.Head(t, "env/dev")

	// The namespaces the example's synced environments apply to, and the
	// bindings the variant asks for there.
	namespaces := map[string]string{"dev": env.Namespace(t), "staging": env.Namespace(t)}
	for _, ns := range namespaces {
		subject := rbacv1.Subject{Kind: "ServiceAccount", Name: "baton", Namespace: "baton-system"}
		role := v.bindAgent
		if v.deployerAccounts {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "baton-deployer"}}
			if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			subject = rbacv1.Subject{Kind: "ServiceAccount", Name: "baton-deployer", Namespace: ns}
			role = "baton-deployer"
		}
		if role == "" {
			continue
		}
		_, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []string{"dev", "staging"} {
		t.Cleanup(func() { // so that a later run does not prune into namespaces gone
			_ = cs.CoreV1().ConfigMaps("baton-system").Delete(context.Background(), inventory.ConfigMapName(e), metav1.DeleteOptions{})
		})
	}

	live := installedPod(t, cs)
	p := newPod(t, cs, live)
	admin := env.Config()
	kubeconfig := p.serviceAccountKubeconfig(t, cs, live, admin.Host, admin.TLSClientConfig.CAData)
	port := freePort(t)
	containerEnv := p.env(t)
	args := p.args(containerEnv)
	configFile := configArg(t, args)
	p.editConfig(t, configFile, append([]configEdit{
		{path: []string{"repositories", "[name=deploy]"}, field: "url", value: srv.HTTPURL(repo.Name)},
		{path: []string{"repositories", "[name=deploy]", "auth"}, field: "username", value: srv.User},
		{path: []string{"repositories", "[name=deploy]"}, field: "interval", value: "1s"},
		{path: []string{"environments", "[name=dev]"}, field: "namespace", value: namespaces["dev"]},
		{path: []string{"environments", "[name=dev]", "scope"}, field: "namespaces", value: "[" + namespaces["dev"] + "]"},
		{path: []string{"environments", "[name=staging]"}, field: "namespace", value: namespaces["staging"]},
		{path: []string{"listen"}, field: "http", value: "127.0.0.1:" + strconv.Itoa(port)},
	}, v.config...))

	// The process: the image's entrypoint is the binary, so the container's
	// args are its arguments. Its environment is the container's, the
	// image's PATH and HOME, and the kubeconfig standing in for the
	// projected token.
	environ := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + p.path("/home/nonroot"), "KUBECONFIG=" + kubeconfig}
	for k, val := range containerEnv {
		environ = append(environ, k+"="+val)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = environ, p.root, logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			lines := strings.Split(logs.String(), "\n")
			t.Logf("agent log (last 100 lines):\n%s", strings.Join(lines[max(0, len(lines)-100):], "\n"))
		}
	}()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	until := func(what string, cond func(context.Context) (bool, error)) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		if err := wait.PollUntilContextCancel(wctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			select {
			case err := <-exited:
				stopped = true
				return false, fmt.Errorf("the agent exited: %v", err)
			default:
			}
			return cond(ctx)
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	until("the agent takes the Lease as its pod", func(ctx context.Context) (bool, error) {
		l, err := cs.CoordinationV1().Leases("baton-system").Get(ctx, "baton-agent", metav1.GetOptions{})
		return err == nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == p.name, nil
	})
	until("dev is synced: its objects are applied", func(ctx context.Context) (bool, error) {
		return objectsPresent(ctx, cs, namespaces["dev"], "web", []string{"settings", "old"}), nil
	})
	until("an Event records the sync", eventFor(cs, events.ReasonSynced, "dev", head))
	for _, path := range []string{"/readyz", "/healthz"} {
		until(path+" answers 200", func(ctx context.Context) (bool, error) {
			code, _ := get(ctx, base+path)
			return code == http.StatusOK, nil
		})
	}
	until("/metrics exports the leader and the synced revision", func(ctx context.Context) (bool, error) {
		code, body := get(ctx, base+"/metrics")
		return code == http.StatusOK && hasSample(body, "baton_leader", "1") &&
			hasSample(body, "baton_synced_revision_info", "1", `environment="dev"`, `revision="`+head+`"`), nil
	})

	pruned := repo.Commit(t, "env/dev", gitserver.Change{Delete: []string{"base/old.yaml"},
		Write: map[string]string{"base/kustomization.yaml": "resources: [web.yaml, settings.yaml]\n"}, Message: "old goes"})
	until("what left git is pruned", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ConfigMaps(namespaces["dev"]).Get(ctx, "old", metav1.GetOptions{})
		return apierrors.IsNotFound(err) && objectsPresent(ctx, cs, namespaces["dev"], "web", []string{"settings"}), nil
	})
	until("an Event records the prune", eventFor(cs, events.ReasonPruned, "dev", pruned))
	until("staging is synced too", func(ctx context.Context) (bool, error) {
		return objectsPresent(ctx, cs, namespaces["staging"], "web", []string{"settings", "old"}), nil
	})

	// SIGTERM, as the kubelet stops the pod: a clean exit that hands the
	// Lease over at once.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("the agent exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second): // the pod's terminationGracePeriodSeconds
		t.Fatal("the agent did not stop within the grace period")
	}
	l, err := cs.CoordinationV1().Leases("baton-system").Get(ctx, "baton-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := l.Spec.HolderIdentity; h != nil && *h == p.name {
		t.Errorf("the Lease is still held by %s after a clean stop", *h)
	}
}

// installedPod returns a running pod of the installed Deployment: the
// agent runs as that pod, with its name and a token bound to it.
func installedPod(t *testing.T, cs kubernetes.Interface) *corev1.Pod {
	t.Helper()
	d, err := cs.AppsV1().Deployments("baton-system").Get(t.Context(), "baton", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := metav1.FormatLabelSelector(d.Spec.Selector)
	pods, err := cs.CoreV1().Pods("baton-system").List(t.Context(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && ownedByCurrentTemplate(&p, d) {
			return &pods.Items[i]
		}
	}
	t.Fatalf("no running pod of Deployment baton-system/baton (selector %s)", sel)
	return nil
}

// ownedByCurrentTemplate reports whether the pod has the Deployment's
// current template (its pod-template-hash is the newest ReplicaSet's):
// a pod of an older rollout has another ConfigMap name.
func ownedByCurrentTemplate(p *corev1.Pod, d *appsv1.Deployment) bool {
	for _, v := range p.Spec.Volumes {
		for _, w := range d.Spec.Template.Spec.Volumes {
			if v.Name == w.Name && v.ConfigMap != nil && (w.ConfigMap == nil || v.ConfigMap.Name != w.ConfigMap.Name) {
				return false
			}
		}
	}
	return true
}

// configArg is the --config flag's value.
func configArg(t *testing.T, args []string) string {
	t.Helper()
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
	}
	t.Fatalf("the container's args %v have no --config=", args)
	return ""
}

// objectsPresent reports whether the Deployment and ConfigMaps exist in
// ns, labelled as the dev or staging environment's.
func objectsPresent(ctx context.Context, cs kubernetes.Interface, ns, deployment string, configMaps []string) bool {
	d, err := cs.AppsV1().Deployments(ns).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil || d.Labels[reconciler.LabelManagedBy] != reconciler.ManagedByValue {
		return false
	}
	for _, name := range configMaps {
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false
		}
	}
	return true
}

// eventFor waits for an Event with reason on env's Environment object in
// baton-system (the install ships its CRD), for the revision.
func eventFor(cs kubernetes.Interface, reason, env, revision string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events("baton-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, e := range list.Items {
			if e.Reason == reason && e.InvolvedObject.Kind == "Environment" && e.InvolvedObject.Name == env &&
				e.Annotations[events.AnnotationRevision] == revision {
				return true, nil
			}
		}
		return false, nil
	}
}

func get(ctx context.Context, url string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// hasSample reports whether the Prometheus text exposition holds a sample
// of metric with value and every label given (name="value").
func hasSample(body, metric, value string, labels ...string) bool {
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') || !strings.HasSuffix(line, " "+value) {
			continue
		}
		if !slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(rest, l) }) {
			return true
		}
	}
	return false
}

// freePort is a loopback port free a moment ago: the agent binds it.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects the process's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
