package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// multiFixture is a fixture with many environments: each on a branch of
// its own (env/<name>) in the fixture's repository, applying overlay/ (one
// ConfigMap, cm-000) into a namespace of its own.
type multiFixture struct {
	*fixture
	envs []string
	ns   map[string]string // environment -> its application namespace
}

func newMultiFixture(t *testing.T, n int) *multiFixture {
	t.Helper()
	f := newFixture(t, overlay(1, "v0"))
	m := &multiFixture{fixture: f, ns: map[string]string{}}
	for i := range n {
		name := fmt.Sprintf("%s-%02d", f.env, i)
		m.envs = append(m.envs, name)
		m.ns[name] = env.Namespace(t)
		f.repo.Commit(t, m.branch(name), gitserver.Change{Write: overlay(1, "v1")})
	}
	return m
}

func (m *multiFixture) branch(env string) string { return "env/" + env }

// configYAML is baton.yaml syncing every environment; agentExtra is
// indented into agent:.
func (m *multiFixture) configYAML(interval time.Duration, agentExtra string) string {
	var envs strings.Builder
	for _, name := range m.envs {
		fmt.Fprintf(&envs, "  - name: %s\n    branch: %s\n    path: overlay\n    namespace: %s\n    timeout: 2m\n",
			name, m.branch(name), m.ns[name])
	}
	return fmt.Sprintf(`
repositories:
  - name: deploy
    url: %s
    auth:
      username: %s
      tokenFile: %s
    interval: %s
    timeout: 30s
environments:
%ssync: [%s]
webhook:
  secretFile: %s
agent:
  namespace: %s
%s
`, m.srv.HTTPURL("deploy"), m.srv.User, writeFile(m.t, "token", m.srv.Token), interval, envs.String(),
		strings.Join(m.envs, ", "), writeFile(m.t, "webhook", m.secret), m.agentNS, indent(agentExtra, "  "))
}

// postPush sends a signed generic push webhook for branch.
func (m *multiFixture) postPush(agentURL, branch string) {
	m.t.Helper()
	body := fmt.Sprintf(`{"repository":%q,"ref":"refs/heads/%s"}`, m.srv.HTTPURL("deploy"), branch)
	mac := hmac.New(sha256.New, []byte(m.secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, agentURL+PathWebhook, bytes.NewReader([]byte(body)))
	require.NoError(m.t, err)
	req.Header.Set("X-Baton-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(m.t, err)
	resp.Body.Close()
	require.Equal(m.t, http.StatusOK, resp.StatusCode)
}

// gate is a validating admission webhook on ConfigMaps in the namespaces
// it labels: it holds each request until the test lets it through (or 20
// seconds pass), so that a test controls exactly when an apply finishes —
// no sleeps. Every request's namespace is reported on calls, in order.
type gate struct {
	t     *testing.T
	label string
	probe string // a namespace of the gate's own, to see it installed
	calls chan string
	// mu guards blocked and open.
	mu sync.Mutex
	// blocked are the namespaces whose requests are held (all when nil
	// and open is false).
	blocked map[string]bool
	open    bool
	changed chan struct{} // closed and replaced when blocked or open changes
}

// newGate installs the webhook for namespaces and returns when the API
// server calls it.
func newGate(t *testing.T, namespaces []string) *gate {
	t.Helper()
	g := &gate{t: t, label: "gate-" + strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"), calls: make(chan string, 1000),
		changed: make(chan struct{})}
	if len(g.label) > 63 {
		g.label = strings.Trim(g.label[:63], "-")
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(g.serve))
	t.Cleanup(srv.Close)
	probe := env.Namespace(t)
	g.probe = probe
	cs := env.Clientset(t)
	for _, ns := range append([]string{probe}, namespaces...) {
		n, err := cs.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
		require.NoError(t, err)
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["baton-test-gate"] = g.label
		_, err = cs.CoreV1().Namespaces().Update(t.Context(), n, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	timeout := int32(30)
	url := srv.URL + "/validate"
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: g.label},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "gate.baton.test",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url,
				CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"baton-test-gate": g.label}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}}}
	_, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(t.Context(), cfg, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		g.setOpen()
		_ = cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(context.Background(), g.label, metav1.DeleteOptions{})
	})
	// The API server picks the configuration up asynchronously: probe
	// until it calls.
	g.setOpen()
	eventually(t, 30*time.Second, "the admission webhook to be called", func() bool {
		_, _ = cs.CoreV1().ConfigMaps(probe).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}, metav1.CreateOptions{})
		for {
			select {
			case ns := <-g.calls:
				if ns == probe {
					return true
				}
			default:
				return false
			}
		}
	})
	g.mu.Lock()
	g.open = false
	g.mu.Unlock()
	return g
}

// hold makes the gate hold the requests of these namespaces only (all of
// them when none are given).
func (g *gate) hold(namespaces ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = false
	g.blocked = nil
	if len(namespaces) > 0 {
		g.blocked = map[string]bool{}
		for _, ns := range namespaces {
			g.blocked[ns] = true
		}
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// setOpen lets every request through, held ones included.
func (g *gate) setOpen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = true
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *gate) holds(ns string) (bool, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.open && (g.blocked == nil || g.blocked[ns]), g.changed
}

// next returns the namespace of the next request the gate sees (the
// probe's aside).
func (g *gate) next(within time.Duration) string {
	g.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ns := <-g.calls:
			if ns != g.probe {
				return ns
			}
		case <-deadline:
			g.t.Fatalf("no admission request within %s", within)
			return ""
		}
	}
}

func (g *gate) serve(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad review", http.StatusBadRequest)
		return
	}
	ns := review.Request.Namespace
	g.calls <- ns
	// Held until the test lets it through; 20s at most, within the API
	// server's 30s timeout.
	limit := time.After(20 * time.Second)
	for {
		held, changed := g.holds(ns)
		if !held {
			break
		}
		select {
		case <-changed:
			continue
		case <-limit:
		case <-r.Context().Done():
			return
		}
		break
	}
	review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&review)
}
