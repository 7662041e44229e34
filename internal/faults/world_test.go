package faults

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/demo"
	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// The pipeline's environments, in order; dev → staging is automatic,
// staging → prod by pull request.
var environments = []string{"dev", "staging", "prod"}

func branch(env string) string { return "env/" + env }

// The objects a release holds: the Deployment and the stable ConfigMaps in
// every release (they must never be deleted), and a changing subset of the
// churn ConfigMaps (so that every release prunes and creates).
const churnPool = 6

var stableObjects = []string{"Deployment/app", "ConfigMap/stable-0", "ConfigMap/stable-1"}

// world is the suite's pipeline: Gitea behind the fault proxy, a clone to
// commit releases from, a namespace per environment and one for the
// agents, and two agent replicas.
type world struct {
	t   *testing.T
	ctx context.Context
	// rnd drives the releases and merges (the test's goroutine); frnd the
	// faults (theirs).
	rnd, frnd *rand.Rand
	gitea     *forge.Forge
	proxy     *faultProxy
	repo      string
	clone     string
	remote    string // authenticated URL, never printed
	ns        map[string]string
	agentNS   string
	secret    string
	replicas  []*replica
	watch     *watcher

	release int   // the last release number committed
	churn   []int // the churn ConfigMaps of the last release
}

func newWorld(t *testing.T, rnd, frnd *rand.Rand) *world {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, rnd: rnd, frnd: frnd, gitea: forge.StartT(t), ns: map[string]string{}, agentNS: env.Namespace(t),
		secret: "storm-secret"}
	w.proxy = startProxy(t, w.gitea.URL())
	w.repo = w.gitea.RepoName("pipeline")
	if _, err := w.gitea.CreateRepo(ctx, w.repo); err != nil {
		t.Fatal(err)
	}
	w.remote = w.gitea.AuthenticatedURL(w.repo)
	w.clone = t.TempDir()
	for _, e := range environments {
		w.ns[e] = env.Namespace(t)
	}
	w.writeRelease(0, []int{0, 1})
	w.git("init", "-q", "-b", branch("dev"))
	w.git("add", "-A")
	w.git("commit", "-q", "-m", "release 0")
	for _, e := range environments {
		w.git("push", "-q", w.remote, "HEAD:refs/heads/"+branch(e))
		if err := w.gitea.WaitBranch(ctx, w.repo, branch(e), ""); err != nil {
			t.Fatal(err)
		}
	}
	// A bystander in every namespace: not Baton's, never to be touched.
	for _, e := range environments {
		_, err := env.Clientset(t).CoreV1().ConfigMaps(w.ns[e]).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "bystander"}, Data: map[string]string{"owner": "someone else"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	w.watch = startWatcher(t, w)

	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	secret := filepath.Join(dir, "webhook")
	if err := os.WriteFile(token, []byte(w.gitea.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte(w.secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := w.config(token, secret)
	bin := testenv.BatonBinary(t)
	for _, name := range []string{"replica-a", "replica-b"} {
		r := newReplica(t, name, bin, env.KubeconfigPath(), dir, cfg)
		r.start()
		w.replicas = append(w.replicas, r)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range w.replicas {
				t.Logf("%s log (last lines):\n%s", r.name, r.tail(60))
			}
		}
	})
	return w
}

// config is baton.yaml for both replicas (each adds its listen address and
// cache folder): short polls, leases, timeouts and soaks, so that faults
// resolve within seconds.
func (w *world) config(token, secret string) string {
	var envs strings.Builder
	for _, e := range environments {
		fmt.Fprintf(&envs, "  - name: %s\n    branch: %s\n    path: overlays/%s\n    namespace: %s\n    timeout: 60s\n    health: {timeout: 30s, soak: 1s}\n",
			e, branch(e), e, w.ns[e])
	}
	return fmt.Sprintf(`repositories:
  - name: pipeline
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 1s
    timeout: 5s
environments:
%ssync: [dev, staging, prod]
pipeline:
  order: [dev, staging, prod]
  edges:
    - {from: dev, to: staging, policy: auto}
    - {from: staging, to: prod, policy: pull-request}
  paths: {include: ["base/**"]}
  author: {name: Baton, email: baton@faults.example}
forge:
  kind: gitea
  url: %s
  tokenFile: %s
  repository: %s/%s
webhook: {secretFile: %s}
agent:
  namespace: %s
  leaderElection: {leaseName: baton-faults, leaseDuration: 3s, renewDeadline: 2s, retryPeriod: 500ms}
`, w.proxy.URL()+w.gitea.User()+"/"+w.repo+".git", w.gitea.User(), token, envs.String(),
		strings.TrimSuffix(w.proxy.URL(), "/"), token, w.gitea.User(), w.repo, secret, w.agentNS)
}

// writeRelease writes release n's files into the clone.
func (w *world) writeRelease(n int, churn []int) {
	base := filepath.Join(w.clone, "base")
	_ = os.RemoveAll(base)
	files := map[string]string{
		"app.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata:
      labels: {app: app}
      annotations: {release: "%d"}
    spec:
      containers: [{name: app, image: registry.example/app:1}]
`, n),
	}
	resources := []string{"app.yaml"}
	names := []string{"stable-0", "stable-1"}
	for _, c := range churn {
		names = append(names, fmt.Sprintf("churn-%d", c))
	}
	for _, name := range names {
		files[name+".yaml"] = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {release: \"%d\"}\n", name, n)
		resources = append(resources, name+".yaml")
	}
	files["kustomization.yaml"] = "resources:\n  - " + strings.Join(resources, "\n  - ") + "\n"
	for name, content := range files {
		writeFileT(w.t, filepath.Join(base, name), content)
	}
	for _, e := range environments {
		writeFileT(w.t, filepath.Join(w.clone, "overlays", e, "kustomization.yaml"), "resources: [../../base]\n")
	}
	w.churn = churn
}

// nextChurn picks the churn ConfigMaps of the next release: at least one
// of the last release's leaves (the pass prunes) and at least one new one
// comes (the pass writes its inventory ahead); others stay or come at
// random.
func (w *world) nextChurn() []int {
	last := map[int]bool{}
	for _, c := range w.churn {
		last[c] = true
	}
	next := map[int]bool{}
	for _, c := range w.rnd.Perm(churnPool)[:1+w.rnd.IntN(3)] {
		next[c] = true
	}
	if len(w.churn) > 0 {
		delete(next, w.churn[w.rnd.IntN(len(w.churn))])
	}
	added := false
	for c := range next {
		added = added || !last[c]
	}
	if !added {
		for _, c := range w.rnd.Perm(churnPool) {
			if !last[c] {
				next[c] = true
				break
			}
		}
	}
	var out []int
	for c := range next {
		out = append(out, c)
	}
	sort.Ints(out)
	return out
}

// commitRelease commits and pushes the next release to env/dev, straight
// to Gitea (a person's push does not go through the agents' proxy).
func (w *world) commitRelease() string {
	w.t.Helper()
	w.release++
	w.git("fetch", "-q", w.remote, "+refs/heads/"+branch("dev")+":refs/remotes/forge/dev")
	w.git("reset", "-q", "--hard", "refs/remotes/forge/dev")
	w.writeRelease(w.release, w.nextChurn())
	w.git("add", "-A")
	w.git("commit", "-q", "-m", fmt.Sprintf("release %d", w.release))
	w.git("push", "-q", w.remote, "HEAD:refs/heads/"+branch("dev"))
	return w.git("rev-parse", "HEAD")
}

func (w *world) git(args ...string) string {
	w.t.Helper()
	out, err := w.gitErr(args...)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

func (w *world) gitErr(args ...string) (string, error) {
	return (&demo.Clone{Dir: w.clone}).Git(w.ctx, args...)
}

// fetch brings every branch of the forge into refs/remotes/forge/*.
func (w *world) fetch() error {
	_, err := w.gitErr("fetch", "-q", "--prune", w.remote, "+refs/heads/*:refs/remotes/forge/*")
	return err
}

// head is a branch's commit as last fetched.
func (w *world) head(env string) string {
	out, _ := w.gitErr("rev-parse", "refs/remotes/forge/"+branch(env))
	return out
}

// baseTree is the hash of a commit's base folder: what a promotion copies.
func (w *world) baseTree(commit string) string {
	out, _ := w.gitErr("rev-parse", commit+":base")
	return out
}

// desired lists the objects of a commit, as Kind/name, sorted.
func (w *world) desired(commit string) []string {
	w.t.Helper()
	kust, err := w.gitErr("show", commit+":base/kustomization.yaml")
	if err != nil {
		w.t.Fatalf("desired objects of %s: %v", commit, err)
	}
	var out []string
	for _, line := range strings.Split(kust, "\n") {
		file, ok := strings.CutPrefix(strings.TrimSpace(line), "- ")
		if !ok {
			continue
		}
		name := strings.TrimSuffix(file, ".yaml")
		if name == "app" {
			out = append(out, "Deployment/app")
		} else {
			out = append(out, "ConfigMap/"+name)
		}
	}
	sort.Strings(out)
	return out
}

// inventory reads an environment's inventory.
func (w *world) inventory(envName string) (inventory.Inventory, error) {
	store := inventory.Store{Client: env.Clientset(w.t).CoreV1(), Namespace: w.agentNS, FieldManager: "faults"}
	inv, _, err := store.Load(w.ctx, envName)
	return inv, err
}

// leader is the replica holding the Lease, nil when none does (or the API
// server cannot say).
func (w *world) leader() *replica {
	l, err := env.Clientset(w.t).CoordinationV1().Leases(w.agentNS).Get(w.ctx, "baton-faults", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return nil
	}
	for _, r := range w.replicas {
		if r.name == *l.Spec.HolderIdentity {
			return r
		}
	}
	return nil
}

// leading waits until r reports itself the leader.
func (w *world) leading(r *replica, within time.Duration) bool {
	return waitFor(w.ctx, within, func() bool {
		st, err := r.status(w.ctx)
		return err == nil && st.Role == agent.RoleLeader
	})
}

// pullRequest is a Gitea pull request as the suite reads it.
type pullRequest struct {
	Number    int    `json:"number"`
	State     string `json:"state"`
	Merged    bool   `json:"merged"`
	Mergeable bool   `json:"mergeable"`
	Head      struct {
		Ref   string `json:"ref"`
		Label string `json:"label"`
		SHA   string `json:"sha"`
	} `json:"head"`
}

// promotionPulls lists the staging → prod promotion pull requests in a
// state.
func (w *world) promotionPulls(state string) ([]pullRequest, error) {
	var all []pullRequest
	for page := 1; page < 20; page++ {
		var prs []pullRequest
		path := fmt.Sprintf("/repos/%s/%s/pulls?state=%s&limit=50&page=%d", w.gitea.User(), w.repo, state, page)
		if err := w.gitea.API(w.ctx, http.MethodGet, path, nil, &prs); err != nil {
			return nil, err
		}
		for _, pr := range prs {
			if pr.Head.Ref == "baton/promote-staging-to-prod" || pr.Head.Label == "baton/promote-staging-to-prod" {
				all = append(all, pr)
			}
		}
		if len(prs) < 50 {
			break
		}
	}
	return all, nil
}

// merge merges a promotion pull request as a reviewer would, with a
// merge commit or squashed (Gitea's default message).
func (w *world) merge(pr pullRequest, style string) error {
	path := fmt.Sprintf("/repos/%s/%s/pulls/%d/merge", w.gitea.User(), w.repo, pr.Number)
	return w.gitea.API(w.ctx, http.MethodPost, path, map[string]any{"Do": style}, nil)
}

// webhook posts a signed generic push event for env/dev to a replica.
func (w *world) webhook(r *replica) {
	body := fmt.Sprintf(`{"repository":%q,"ref":"refs/heads/env/dev"}`, w.proxy.URL()+w.gitea.User()+"/"+w.repo+".git")
	mac := hmac.New(sha256.New, []byte(w.secret))
	mac.Write([]byte(body))
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, "http://"+r.addr+agent.PathWebhook, strings.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("X-Baton-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	if resp, err := httpClient.Do(req); err == nil {
		resp.Body.Close()
	}
}

func writeFileT(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 100ms until it holds or within passes.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}
