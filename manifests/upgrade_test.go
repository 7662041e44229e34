package manifests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// writeUpgradeFixture records a new fixture of the agent's writes. The
// committed one stands for agents in the field: record it again only to
// add a format, under a new name, never to make a failing upgrade pass.
var writeUpgradeFixture = flag.String("write-upgrade-fixture", "",
	"record the current agent's first-pass writes into this file under testdata/upgrade/")

// upgradeFixture is what an agent of an earlier release left in a cluster,
// recorded from that release's own code: every write of its first pass
// (the objects' server-side applies and the inventory ConfigMap), the git
// content it synced and the configuration it ran with. Namespaces and the
// revision are placeholders.
type upgradeFixture struct {
	Comment    string            `json:"comment"`
	RecordedAt string            `json:"recordedAt"` // the commit whose code wrote it
	Config     string            `json:"config"`
	Files      map[string]string `json:"files"`
	Writes     []recordedWrite   `json:"writes"`
}

type recordedWrite struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
	// ResourceVersion is the one the server answered with: the object's
	// own when the write changed nothing. Not recorded in fixtures.
	ResourceVersion string `json:"-"`
}

// Placeholders in a fixture.
const (
	phNamespace      = "${NAMESPACE}"
	phAgentNamespace = "${AGENT_NAMESPACE}"
	phRevision       = "${REVISION}"
	phRepository     = "${REPOSITORY_URL}"
	phUser           = "${GIT_USER}"
	phTokenFile      = "${TOKEN_FILE}"
	phCacheDir       = "${CACHE_DIR}"
)

// upgradeRepo is the deployment repository the fixtures were recorded on:
// a namespaced application of several kinds.
func upgradeRepo() map[string]string {
	return map[string]string{
		"base/kustomization.yaml": "resources: [app.yaml]\n",
		"base/app.yaml": `apiVersion: v1
kind: ServiceAccount
metadata: {name: web}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: credentials}
stringData: {password: not-a-real-one}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: web}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: web}
subjects: [{kind: ServiceAccount, name: web}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, image: "shop/web:1", ports: [{containerPort: 8080}]}]
`,
		"overlays/dev/kustomization.yaml": "resources: [../../base]\ncommonLabels: {tier: web}\n",
	}
}

// upgradeConfig is the configuration the fixtures were recorded with.
const upgradeConfig = `repositories:
  - name: deploy
    url: ${REPOSITORY_URL}
    auth: {username: ${GIT_USER}, tokenFile: ${TOKEN_FILE}}
    interval: 1s
environments:
  - name: dev
    branch: env/dev
    path: overlays/dev
    namespace: ${NAMESPACE}
    health: {timeout: 30s, soak: 1h}
sync: [dev]
agent:
  namespace: ${AGENT_NAMESPACE}
  cacheDir: ${CACHE_DIR}
  leaderElection: {enabled: false}
`

// upgradeFixtures are the recorded formats, oldest first.
var upgradeFixtures = []string{"inventory-v1.json"}

// TestUpgradeChangesNoObject starts from the cluster state an agent of an
// earlier release left — its recorded writes replayed, inventory included
// — and runs this code's agent with the same configuration on the same
// commit: its first pass must change no object (no update, no re-create,
// no prune): every write it sends for them is answered with the object's
// resourceVersion unchanged, and every uid stays. (The resourceVersions
// themselves are not compared: the controllers write status.) Then an object that
// leaves git must be pruned: the old inventory still governs pruning.
func TestUpgradeChangesNoObject(t *testing.T) {
	if *writeUpgradeFixture != "" {
		recordUpgradeFixture(t, filepath.Join(dir(t), "testdata", "upgrade", *writeUpgradeFixture))
		return
	}
	for _, name := range upgradeFixtures {
		t.Run(name, func(t *testing.T) { replayUpgrade(t, filepath.Join(dir(t), "testdata", "upgrade", name)) })
	}
}

// TestEarlierInstallConfigStillLoads: the baton.yaml an earlier release's
// install shipped (a copy of manifests/baton.yaml as that release had it)
// loads in this release, so an upgrade that keeps the user's edited
// ConfigMap starts.
func TestEarlierInstallConfigStillLoads(t *testing.T) {
	for _, name := range []string{"baton-v1.yaml"} {
		raw, err := os.ReadFile(filepath.Join(dir(t), "testdata", "upgrade", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse(raw); err != nil {
			t.Errorf("testdata/upgrade/%s, an earlier release's manifests/baton.yaml: %v", name, err)
		}
	}
}

// upgradeWorld is one run's git server, namespaces and configuration.
type upgradeWorld struct {
	srv          *gitserver.Server
	repo         *gitserver.Repo
	ns, agentNS  string
	vars         map[string]string // placeholder -> value
	configString string
}

func newUpgradeWorld(t *testing.T, files map[string]string, configText string) *upgradeWorld {
	t.Helper()
	// A user name no recorded write holds by chance (the default is
	// "baton"), so that placeholders replace only what they stand for.
	// Fixed namespaces: an object's desired-content hash covers its
	// namespace, so a replay in another namespace would not be the state
	// the earlier agent left.
	w := &upgradeWorld{srv: gitserver.Start(t, gitserver.Options{User: "upgrade-fixture-git-user"}),
		ns: freshNamespace(t, "baton-upgrade-app"), agentNS: freshNamespace(t, "baton-upgrade-agent")}
	w.repo = w.srv.CreateRepo(t, "deploy", files)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(w.srv.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.vars = map[string]string{
		phNamespace: w.ns, phAgentNamespace: w.agentNS, phRevision: w.repo.Head(t, "env/dev"),
		phRepository: w.srv.HTTPURL("deploy"), phUser: w.srv.User, phTokenFile: token, phCacheDir: t.TempDir(),
	}
	w.configString = w.fill(configText)
	return w
}

// freshNamespace creates the namespace name, first waiting for an earlier
// run's to be gone, and deletes it when the test ends.
func freshNamespace(t *testing.T, name string) string {
	t.Helper()
	cs := env.Clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace %s of an earlier run not gone: %v", name, err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// fill replaces the placeholders in s with this run's values.
func (w *upgradeWorld) fill(s string) string {
	for k, v := range w.vars {
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

// placeholders replaces this run's values in s with the placeholders,
// longest first, so that no value is replaced inside a longer one.
func (w *upgradeWorld) placeholders(s string) string {
	keys := slices.Collect(maps.Keys(w.vars))
	slices.SortFunc(keys, func(a, b string) int { return len(w.vars[b]) - len(w.vars[a]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, w.vars[k], k)
	}
	return s
}

// runAgent runs this code's agent with cfg over restCfg until stop is
// called; ready reports when the first pass at the head was a success.
func (w *upgradeWorld) runAgent(t *testing.T, restCfg *rest.Config) (a *agent.Agent, stop func()) {
	t.Helper()
	cfg, err := config.Parse([]byte(w.configString))
	if err != nil {
		t.Fatalf("upgrade configuration: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err = agent.New(agent.Options{Config: cfg, REST: restCfg, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop within 30s")
		}
	}
}

// waitSynced waits until dev's last pass synced revision successfully.
func waitSynced(t *testing.T, a *agent.Agent, revision string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var last *agent.SyncInfo
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		for _, e := range a.Status().Environments {
			if e.Name == "dev" {
				last = e.LastSync
			}
		}
		return last != nil && last.Revision == revision && last.Result == "success", nil
	})
	if err != nil {
		t.Fatalf("dev did not sync %s: last pass %+v", revision, last)
	}
}

// recordUpgradeFixture runs this code's agent on upgradeRepo and records
// every write of its first pass, then writes the fixture.
func recordUpgradeFixture(t *testing.T, path string) {
	w := newUpgradeWorld(t, upgradeRepo(), upgradeConfig)
	rec := &writeRecorder{}
	cfg := rest.CopyConfig(env.Config())
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &recordingTransport{next: rt, rec: rec} })
	a, stop := w.runAgent(t, cfg)
	waitSynced(t, a, w.vars[phRevision])
	stop()

	head, err := gitOutput(filepath.Dir(dir(t)), "rev-parse", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	f := upgradeFixture{
		Comment: "The writes of an agent's first pass, recorded from that release's own code by " +
			"go test ./manifests -run TestUpgradeChangesNoObject -write-upgrade-fixture NAME. " +
			"It stands for agents in the field: never record it again.",
		RecordedAt: head,
		Config:     upgradeConfig,
		Files:      upgradeRepo(),
	}
	for _, wr := range rec.sorted() {
		wr.Path, wr.Query, wr.Body = w.placeholders(wr.Path), w.placeholders(wr.Query), w.placeholders(wr.Body)
		f.Writes = append(f.Writes, wr)
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d writes into %s", len(f.Writes), path)
}

// replayUpgrade replays a fixture's writes, then runs this code's agent.
func replayUpgrade(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f upgradeFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	w := newUpgradeWorld(t, f.Files, f.Config)
	admin := env.Config()
	hc, err := rest.HTTPClientFor(admin)
	if err != nil {
		t.Fatal(err)
	}
	var objects []string // the environment's objects' API paths
	inventoryPath := "/api/v1/namespaces/" + w.agentNS + "/configmaps/" + inventory.ConfigMapName("dev")
	sawInventory := false
	for _, wr := range f.Writes {
		p := w.fill(wr.Path)
		req, err := http.NewRequestWithContext(t.Context(), wr.Method, admin.Host+p+"?"+w.fill(wr.Query), strings.NewReader(w.fill(wr.Body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", wr.ContentType)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("replay %s %s: %s: %s", wr.Method, p, resp.Status, body)
		}
		if p == inventoryPath {
			sawInventory = true
		} else {
			objects = append(objects, p)
		}
	}
	if !sawInventory || len(objects) == 0 {
		t.Fatalf("%s holds %d object writes and inventory %v: not a first pass", path, len(objects), sawInventory)
	}
	before := versions(t, hc, admin.Host, objects)

	// The agent's writes are recorded as the fixture's were: the first
	// pass may write its inventory (in a new format, say), its Events,
	// Lease and Environment objects (its own status, new in this release),
	// and nothing else.
	rec := &writeRecorder{}
	restCfg := rest.CopyConfig(admin)
	restCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &recordingTransport{next: rt, rec: rec} })
	a, stop := w.runAgent(t, restCfg)
	defer stop()
	waitSynced(t, a, w.vars[phRevision])
	// A write the server answers with the object's resourceVersion of
	// before changed nothing (today's agent re-applies Secrets this way).
	for _, wr := range rec.sorted() {
		if wr.Path == inventoryPath || strings.HasPrefix(wr.Path, "/apis/baton.dev/") {
			continue
		}
		if wr.Method == http.MethodDelete || wr.ResourceVersion != before[wr.Path].ResourceVersion {
			t.Errorf("the upgraded agent's first pass changed %s with %s ?%s (resourceVersion %s, was %s):\n%s",
				wr.Path, wr.Method, wr.Query, wr.ResourceVersion, before[wr.Path].ResourceVersion, wr.Body)
		}
	}
	after := versions(t, hc, admin.Host, objects)
	for _, p := range objects {
		switch b, a := before[p], after[p]; {
		case a.UID == "":
			t.Errorf("%s: deleted by the upgraded agent's first pass", p)
		case a.UID != b.UID:
			t.Errorf("%s: re-created by the upgraded agent's first pass (uid %s, was %s)", p, a.UID, b.UID)
		}
	}

	// The earlier release's inventory still tells what to prune.
	settings := "/api/v1/namespaces/" + w.ns + "/configmaps/settings"
	if !slices.Contains(objects, settings) {
		t.Fatalf("%s does not apply ConfigMap settings: the prune step needs it", path)
	}
	next := w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/app.yaml": withoutDocument(f.Files["base/app.yaml"], "name: settings")},
		Message: "settings leaves git"})
	waitSynced(t, a, next)
	if v := versions(t, hc, admin.Host, []string{settings}); v[settings].UID != "" {
		t.Errorf("ConfigMap settings left git but was not pruned after the upgrade")
	}
}

// withoutDocument drops the YAML document containing marker.
func withoutDocument(yamlText, marker string) string {
	var keep []string
	for _, doc := range strings.Split(yamlText, "\n---\n") {
		if !strings.Contains(doc, marker) {
			keep = append(keep, doc)
		}
	}
	return strings.Join(keep, "\n---\n")
}

// objectVersion is an object's identity and version.
type objectVersion struct {
	UID, ResourceVersion string
}

// versions reads each object's version (empty when gone).
func versions(t *testing.T, hc *http.Client, host string, paths []string) map[string]objectVersion {
	t.Helper()
	out := map[string]objectVersion{}
	for _, p := range paths {
		resp, err := hc.Get(host + p)
		if err != nil {
			t.Fatal(err)
		}
		var m metav1.PartialObjectMetadata
		err = json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			out[p] = objectVersion{}
			continue
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %v", p, resp.Status, err)
		}
		out[p] = objectVersion{string(m.UID), m.ResourceVersion}
	}
	return out
}

// writeRecorder keeps the writes that change the cluster's objects.
type writeRecorder struct {
	mu     sync.Mutex // guards writes
	writes []recordedWrite
}

func (r *writeRecorder) sorted() []recordedWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.writes)
	slices.SortStableFunc(out, func(a, b recordedWrite) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// recordingTransport records the agent's writes: not dry runs, not its
// Events or Lease (the agent's own bookkeeping, not what it leaves behind).
type recordingTransport struct {
	next http.RoundTripper
	rec  *writeRecorder
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	write := req.Method != http.MethodGet && req.Method != http.MethodHead &&
		req.URL.Query().Get("dryRun") == "" &&
		!strings.Contains(req.URL.Path, "/events") && !strings.Contains(req.URL.Path, "/leases")
	var body []byte
	if write && req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := rt.next.RoundTrip(req)
	if write && err == nil && resp.StatusCode < 300 {
		answer, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		if rerr != nil {
			return nil, rerr
		}
		var m metav1.PartialObjectMetadata
		_ = json.Unmarshal(answer, &m)
		rt.rec.mu.Lock()
		rt.rec.writes = append(rt.rec.writes, recordedWrite{Method: req.Method, Path: req.URL.Path,
			Query: req.URL.RawQuery, ContentType: req.Header.Get("Content-Type"), Body: string(body),
			ResourceVersion: m.ResourceVersion})
		rt.rec.mu.Unlock()
	}
	return resp, err
}

// gitOutput runs git in dir.
func gitOutput(dir string, args ...string) (string, error) {
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).Output()
	return strings.TrimSpace(string(out)), err
}
