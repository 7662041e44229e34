package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// fixture is one test's world: a git server with a repository whose
// env/dev branch holds an overlay, a namespace for the agent (inventory and
// Lease) and one for the applied objects.
type fixture struct {
	t        testing.TB
	srv      *gitserver.Server
	repo     *gitserver.Repo
	env      string // environment name, unique to the test
	agentNS  string
	appNS    string
	secret   string // webhook secret
	tokenDir string
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// newFixture starts a git server and creates the repository with files on
// every environment branch.
func newFixture(t testing.TB, files map[string]string) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: gitserver.Start(t, gitserver.Options{}), agentNS: env.Namespace(t), appNS: env.Namespace(t)}
	base := strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 30 {
		base = strings.Trim(base[len(base)-30:], "-")
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	f.env = base + "-" + hex.EncodeToString(b)
	f.secret = "webhook-secret-" + hex.EncodeToString(b)
	f.repo = f.srv.CreateRepo(t, "deploy", files)
	return f
}

// writeFile writes content to a fresh file, as a mounted Secret would be.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content+"\n"), 0o600))
	return p
}

// configYAML is baton.yaml for the fixture: envExtra is indented into the
// environment, agentExtra into agent:, and extra appended (top-level keys).
func (f *fixture) configYAML(interval time.Duration, envExtra, agentExtra, extra string) string {
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
  - name: %s
    branch: env/dev
    path: overlay
    namespace: %s
%s
sync: [%s]
webhook:
  secretFile: %s
agent:
  namespace: %s
%s
%s`, f.srv.HTTPURL("deploy"), f.srv.User, writeFile(f.t, "token", f.srv.Token), interval, f.env, f.appNS,
		indent(envExtra, "    "), f.env, writeFile(f.t, "webhook", f.secret), f.agentNS, indent(agentExtra, "  "), extra)
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

func (f *fixture) config(yamlText string) *config.Config {
	f.t.Helper()
	cfg, err := config.Parse([]byte(yamlText))
	require.NoError(f.t, err)
	return cfg
}

// running is an agent started by a test.
type running struct {
	agent  *Agent
	addr   string
	cancel context.CancelFunc
	done   chan error
	rec    *countingRecorder
	// kill makes every API request of the agent fail, as if its pod died
	// without a chance to release the Lease.
	kill func()
	// partition makes every API request fail while on is true: the
	// replica is cut off from the API server, then reconnected.
	partition func(on bool)
}

// startAgent runs an agent until the test ends (or stop is called).
func (f *fixture) startAgent(cfg *config.Config, identity string, mutate func(*Options)) *running {
	f.t.Helper()
	rc := env.Config()
	var mu sync.Mutex
	killed := false
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			k := killed
			mu.Unlock()
			if k {
				return nil, fmt.Errorf("agent %s was killed", identity)
			}
			return rt.RoundTrip(r)
		})
	}
	c := *cfg
	c.Agent.CacheDir = f.t.TempDir() // one store per replica, as in separate pods
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f.t, err)
	rec := &countingRecorder{}
	// This test binary serves as the render worker (testenv.Main).
	worker, err := os.Executable()
	require.NoError(f.t, err)
	opts := Options{Config: &c, REST: rc, Identity: identity, Listener: ln, Recorder: rec, RenderWorker: worker,
		Logger:      slog.New(slog.NewJSONHandler(testWriter{f.t, identity}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second}
	if mutate != nil {
		mutate(&opts)
	}
	a, err := New(opts)
	require.NoError(f.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{agent: a, addr: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1), rec: rec,
		kill:      func() { mu.Lock(); killed = true; mu.Unlock() },
		partition: func(on bool) { mu.Lock(); killed = on; mu.Unlock() }}
	go func() { r.done <- a.Run(ctx) }()
	f.t.Cleanup(func() { r.stop(f.t) })
	return r
}

// stop cancels the agent (SIGTERM) and waits for Run to return.
func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			require.NoError(t, err)
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30s of its context ending")
	}
}

// die kills the agent (kill) and waits for it to return, whatever it
// returns: a killed replica's shutdown reaches nothing.
func (r *running) die(t testing.TB) {
	t.Helper()
	r.kill()
	r.cancel()
	select {
	case <-r.done:
		close(r.done)
	case <-time.After(30 * time.Second):
		t.Fatal("killed agent did not return within 30s of its context ending")
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// testWriter sends log lines to t.Log, so that they show for a failing test.
type testWriter struct {
	t    testing.TB
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// countingRecorder is a real Recorder that remembers what it was told.
type countingRecorder struct {
	mu         sync.Mutex
	syncs      []SyncRecord
	health     []HealthRecord
	promotions []PromotionRecord
	leading    []bool
	released   []string
}

func (c *countingRecorder) SyncDone(r SyncRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncs = append(c.syncs, r)
}

func (c *countingRecorder) HealthChanged(r HealthRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.health = append(c.health, r)
}

func (c *countingRecorder) PromotionDone(r PromotionRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.promotions = append(c.promotions, r)
}

func (c *countingRecorder) LeaderChanged(leading bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leading = append(c.leading, leading)
}

func (c *countingRecorder) EnvironmentReleased(env string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = append(c.released, env)
}

func (c *countingRecorder) syncCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.syncs)
}

// synced reports whether a successful sync of commit was recorded.
func (c *countingRecorder) synced(commit string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.syncs {
		if s.Revision == commit && s.Result == SyncSucceeded {
			return true
		}
	}
	return false
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, within, true,
		func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, "waiting %s for %s", within, what)
}

// configMapValue reads data.value of a ConfigMap, "" when it is missing.
func configMapValue(t testing.TB, namespace, name string) string {
	t.Helper()
	cm, err := env.Clientset(t).CoreV1().ConfigMaps(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	require.NoError(t, err)
	return cm.Data["value"]
}

// configMapData returns data.value of a watched ConfigMap.
func configMapData(obj runtime.Object) string {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok {
		return ""
	}
	return cm.Data["value"]
}

// loadInventory reads the environment's inventory from the cluster.
func (f *fixture) loadInventory() (inventory.Inventory, bool) {
	f.t.Helper()
	store := inventory.Store{Client: env.Clientset(f.t).CoreV1(), Namespace: f.agentNS, FieldManager: "test"}
	inv, found, err := store.Load(context.Background(), f.env)
	require.NoError(f.t, err)
	return inv, found
}

// postWebhook sends a generic signed push event for env/dev.
func (f *fixture) postWebhook(agentURL string) *http.Response {
	f.t.Helper()
	body := fmt.Sprintf(`{"repository":%q,"ref":"refs/heads/env/dev"}`, f.srv.HTTPURL("deploy"))
	mac := hmac.New(sha256.New, []byte(f.secret))
	mac.Write([]byte(body))
	req, err := http.NewRequest(http.MethodPost, agentURL+PathWebhook, bytes.NewReader([]byte(body)))
	require.NoError(f.t, err)
	req.Header.Set("X-Baton-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	resp.Body.Close()
	return resp
}

// overlay is a kustomization with n ConfigMaps whose data.value is value.
func overlay(n int, value string) map[string]string {
	files := map[string]string{}
	var res []string
	for i := range n {
		name := fmt.Sprintf("cm-%03d.yaml", i)
		files["overlay/"+name] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\ndata:\n  value: %q\n", i, value)
		res = append(res, "  - "+name)
	}
	files["overlay/kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + strings.Join(res, "\n") + "\n"
	return files
}

// pipelineOptions shape pipelineConfig.
type pipelineOptions struct {
	// interval is the repository's poll interval.
	interval string
	// stagingNS is staging's namespace; "" means the fixture's one.
	stagingNS string
	// stagingHealth is staging's health setting, e.g. "{timeout: 60s}".
	stagingHealth string
	// syncStaging makes the agent sync staging too (else dev only).
	syncStaging bool
	// edge adds fields to the dev → staging edge, e.g. ", revertOnUnhealthy: true".
	edge string
}

// pipelineConfig is baton.yaml for a dev → staging pipeline (auto edge,
// dev soaking 1s) on the fixture's repository: overlays/dev and
// overlays/staging on env/dev and env/staging. It returns the names of the
// two environments.
func (f *fixture) pipelineConfig(o pipelineOptions) (cfg *config.Config, dev, staging string) {
	f.t.Helper()
	dev, staging = f.env, f.env+"-stg"
	if o.stagingNS == "" {
		o.stagingNS = f.appNS
	}
	sync := dev
	if o.syncStaging {
		sync += ", " + staging
	}
	health := ""
	if o.stagingHealth != "" {
		health = "\n    health: " + o.stagingHealth
	}
	cfg = f.config(fmt.Sprintf(`
repositories:
  - name: deploy
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: %s
    timeout: 30s
environments:
  - name: %s
    branch: env/dev
    path: overlays/dev
    namespace: %s
    health: {soak: 1s}
  - name: %s
    branch: env/staging
    path: overlays/staging
    namespace: %s%s
sync: [%s]
pipeline:
  order: [%s, %s]
  edges: [{from: %s, to: %s, policy: auto%s}]
  author: {name: Baton Bot, email: bot@example.com}
webhook: {secretFile: %s}
agent:
  namespace: %s
`, f.srv.HTTPURL("deploy"), f.srv.User, writeFile(f.t, "token", f.srv.Token), o.interval, dev, f.appNS, staging,
		o.stagingNS, health, sync, dev, staging, dev, staging, o.edge, writeFile(f.t, "webhook", f.secret), f.agentNS))
	return cfg, dev, staging
}

// configMapApp is a ConfigMap "app" whose data.version is version.
func configMapApp(version string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  version: %q\n", version)
}

// appFiles is a repository whose dev and staging overlays both use base/,
// a ConfigMap app at version 1.
func appFiles() map[string]string {
	return map[string]string{
		"base/kustomization.yaml":             "resources: [app.yaml]\n",
		"base/app.yaml":                       configMapApp("1"),
		"overlays/dev/kustomization.yaml":     "resources: [../../base]\n",
		"overlays/staging/kustomization.yaml": "resources: [../../base]\n",
	}
}
