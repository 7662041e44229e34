package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/demo"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// step bounds each step of the story: generous for a loaded 2-core machine
// under -race, far above what a step takes (a few seconds).
const step = 90 * time.Second

// world is the story's parts: the forge with the shop repository, a clone
// of it, and one agent per environment.
type world struct {
	t         *testing.T
	ctx       context.Context
	gitea     *forge.Forge
	clone     *demo.Clone
	agents    map[string]*demo.Agent
	ns        map[string]string // environment -> application namespace
	agentNS   map[string]string // environment -> the agent's namespace
	configDir string
}

// TestReleaseFromCommitToProdAndBack runs the demo's story: a good release
// carried from dev to prod (automatic to staging, by pull request to prod),
// then a bad release frozen in dev and rolled back with git revert.
func TestReleaseFromCommitToProdAndBack(t *testing.T) {
	w := newWorld(t)
	dev, staging, prod := w.agents["dev"], w.agents["staging"], w.agents["prod"]

	// 1. Initial sync of all three environments, all healthy.
	initial, err := w.clone.Head(w.ctx)
	require.NoError(t, err)
	for _, env := range demo.Environments {
		w.wait(env+" synced and healthy at the initial commit", func() bool { return w.agents[env].SyncedHealthy(initial) })
	}

	// 2. CI bumps api in dev with the baton CLI: dev rolls out, and after
	// the soak the release is promoted to staging automatically.
	out := w.baton("set-image", "--env", "dev", "api=registry.example/api:1.1.0")
	require.Contains(t, out, "dev: pushed")
	good := w.head("dev")
	require.NotEqual(t, initial, good)
	w.wait("dev synced and healthy at the good release", func() bool { return dev.SyncedHealthy(good) })
	require.Equal(t, "registry.example/api:1.1.0", w.image("dev", "api"))

	var promoted string
	w.wait("the promotion commit on env/staging", func() bool {
		promoted = w.head("staging")
		return strings.Contains(w.message(promoted), "Baton-Promoted-From: dev@"+good)
	})
	w.wait("staging synced and healthy at the promotion", func() bool { return staging.SyncedHealthy(promoted) })
	require.Equal(t, "registry.example/api:1.1.0", w.image("staging", "api"))
	require.Equal(t, "registry.example/web:1.0.0", w.image("staging", "web"), "only api was released")

	// 3. After staging's soak, a pull request to prod; a reviewer merges it.
	var pr pullRequest
	w.wait("the pull request to prod", func() bool {
		var ok bool
		pr, ok = w.openPullRequest("baton/promote-staging-to-prod")
		return ok
	})
	require.Equal(t, demo.Branch("prod"), pr.Base.Ref)
	w.wait("staging's status shows the pull request", func() bool {
		p := staging.Environment().Promotions
		return len(p) == 1 && p[0].PullRequestURL == pr.HTMLURL && p[0].Outcome == agent.PromotionPullRequest
	})
	// The prod agent previews it: what merging would change in prod.
	w.wait("the pull request's preview", func() bool {
		st, err := demo.CommitStatus(w.ctx, w.gitea, pr.Head.SHA, "baton/preview/prod")
		return err == nil && st.State == "success" && strings.Contains(st.Description, "would change")
	})
	require.NoError(t, w.gitea.API(w.ctx, http.MethodPost, fmt.Sprintf("/repos/%s/shop/pulls/%d/merge", w.gitea.User(), pr.Number),
		map[string]any{"Do": "merge", "merge_message_field": "Merge the promotion of api 1.1.0 to prod"}, nil))
	merged := w.head("prod")
	require.Contains(t, w.message(merged+"^2"), "Baton-Promoted-From: staging@"+promoted, "the merged promotion commit")
	w.wait("prod synced and healthy at the merge", func() bool { return prod.SyncedHealthy(merged) })
	w.wait("the merge commit's deploy status", func() bool {
		st, err := demo.CommitStatus(w.ctx, w.gitea, merged, "baton/prod")
		return err == nil && st.State == "success"
	})
	require.Equal(t, "registry.example/api:1.1.0", w.image("prod", "api"))

	// 4. A bad release: its api pods are OOMKilled. Dev says why, and
	// promotions out of dev are frozen; staging does not move.
	bad, err := w.clone.BadRelease(w.ctx)
	require.NoError(t, err)
	w.wait("dev degraded with cause oomkilled in /api/status", func() bool {
		e := w.apiStatus(dev, "dev")
		return e.Synced != nil && e.Synced.Commit == bad && e.Health.Status == "Degraded" && e.Health.Cause == "oomkilled"
	})
	w.wait("promotions out of dev frozen", func() bool {
		p := dev.Environment().Promotions
		return len(p) == 1 && p[0].Revision == bad && p[0].Outcome == agent.PromotionFrozen
	})
	require.Equal(t, promoted, w.head("staging"), "a frozen edge pushes nothing")
	require.Equal(t, 1.0, gauge(t, dev.Registry, "baton_promotion_frozen", map[string]string{"from": "dev", "to": "staging"}))

	// 5. git revert of the bad commit on env/dev: dev rolls back to
	// healthy and the freeze clears.
	reverted, err := w.clone.Revert(w.ctx, bad)
	require.NoError(t, err)
	w.wait("dev synced and healthy at the revert", func() bool { return dev.SyncedHealthy(reverted) })
	require.Equal(t, "registry.example/api:1.1.0", w.image("dev", "api"))
	w.wait("the freeze cleared", func() bool {
		p := dev.Environment().Promotions
		return len(p) == 1 && p[0].Revision == reverted && p[0].Outcome != agent.PromotionFrozen
	})
	require.Equal(t, 0.0, gauge(t, dev.Registry, "baton_promotion_frozen", map[string]string{"from": "dev", "to": "staging"}))

	// 6. Final inventories: the shop's six objects in each namespace.
	for name, rev := range map[string]string{"dev": reverted, "staging": promoted, "prod": merged} {
		store := inventory.Store{Client: env.Clientset(t).CoreV1(), Namespace: w.agentNS[name], FieldManager: "e2e"}
		inv, found, err := store.Load(w.ctx, name)
		require.NoError(t, err)
		require.True(t, found, "inventory of %s", name)
		require.Equal(t, rev, inv.Revision, "inventory of %s", name)
		var names []string
		for _, e := range inv.Entries {
			require.Equal(t, w.ns[name], e.Namespace, "%s in %s", e, name)
			names = append(names, e.Kind+"/"+e.Name)
		}
		slices.Sort(names)
		require.Equal(t, []string{"ConfigMap/shop-config", "Deployment/api", "Deployment/web",
			"HorizontalPodAutoscaler/api", "Service/api", "Service/web"}, names, "inventory of %s", name)
	}

	// The metrics each agent exposes tell the same story.
	success := map[string]string{"result": "success"}
	require.GreaterOrEqual(t, counter(t, dev.Registry, "baton_sync_total", success), 4.0, "dev: initial, good, bad, revert")
	require.GreaterOrEqual(t, counter(t, staging.Registry, "baton_sync_total", success), 2.0)
	require.GreaterOrEqual(t, counter(t, prod.Registry, "baton_sync_total", success), 2.0)
	require.GreaterOrEqual(t, counter(t, dev.Registry, "baton_deployments_total", nil), 3.0, "dev: good, bad, revert")
	require.GreaterOrEqual(t, counter(t, staging.Registry, "baton_deployments_total", nil), 1.0)
	require.GreaterOrEqual(t, counter(t, prod.Registry, "baton_deployments_total", nil), 1.0)
	require.Equal(t, 1.0, counter(t, dev.Registry, "baton_promotions_total", map[string]string{"to": "staging", "result": "pushed"}))
	require.Equal(t, 1.0, counter(t, dev.Registry, "baton_promotions_total", map[string]string{"to": "staging", "result": "frozen"}))
	require.GreaterOrEqual(t, counter(t, staging.Registry, "baton_promotions_total", map[string]string{"to": "prod", "result": "pull-request"}), 1.0)
	require.GreaterOrEqual(t, counter(t, dev.Registry, "baton_change_failures_total", nil), 1.0, "the bad release")
}

func newWorld(t *testing.T) *world {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w := &world{t: t, ctx: ctx, gitea: forge.StartT(t), agents: map[string]*demo.Agent{},
		ns: map[string]string{}, agentNS: map[string]string{}, configDir: t.TempDir()}
	_, err := w.gitea.CreateRepo(ctx, "shop")
	require.NoError(t, err)
	w.clone, err = demo.PushSample(ctx, t.TempDir(), w.gitea.AuthenticatedURL("shop"))
	require.NoError(t, err)
	for _, name := range demo.Environments {
		require.NoError(t, w.gitea.WaitBranch(ctx, "shop", demo.Branch(name), ""))
		w.ns[name], w.agentNS[name] = env.Namespace(t), env.Namespace(t)
	}
	token := filepath.Join(w.configDir, "token")
	require.NoError(t, os.WriteFile(token, []byte(w.gitea.Token()+"\n"), 0o600))
	for _, name := range demo.Environments {
		cfg := demo.Config(demo.ConfigOptions{Sync: []string{name}, RepoURL: w.gitea.CloneURL("shop"), User: w.gitea.User(),
			TokenFile: token, ForgeURL: w.gitea.URL(), Repository: w.gitea.User() + "/shop", Namespaces: w.ns,
			AgentNamespace: w.agentNS[name]})
		require.NoError(t, os.WriteFile(filepath.Join(w.configDir, name+".yaml"), []byte(cfg), 0o600))
		a, err := demo.StartAgent(ctx, demo.AgentOptions{Config: cfg, REST: env.Config(), CacheDir: t.TempDir(),
			Logger: slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, a.Stop(30*time.Second)) })
		w.agents[name] = a
	}
	return w
}

func (w *world) wait(what string, cond func() bool) {
	w.t.Helper()
	require.NoError(w.t, demo.Wait(w.ctx, step, what, cond))
}

// baton runs the baton CLI, built once for the package, with dev's
// configuration (the environments are the same in every agent's).
func (w *world) baton(args ...string) string {
	w.t.Helper()
	args = append([]string{args[0], "--config", filepath.Join(w.configDir, "dev.yaml")}, args[1:]...)
	cmd := exec.CommandContext(w.ctx, batonBinary(w.t), args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+w.configDir)
	out, err := cmd.CombinedOutput()
	require.NoError(w.t, err, "baton %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// head is the commit of an environment's branch on the forge.
func (w *world) head(env string) string {
	w.t.Helper()
	out := w.git("ls-remote", w.clone.Remote, "refs/heads/"+demo.Branch(env))
	commit, _, _ := strings.Cut(out, "\t")
	require.NotEmpty(w.t, commit, "%s has no branch %s", "shop", demo.Branch(env))
	return commit
}

// message is a commit's message (any revision expression), fetched from
// the forge.
func (w *world) message(commit string) string {
	w.t.Helper()
	w.git("fetch", "-q", w.clone.Remote, "refs/heads/*:refs/remotes/forge/*")
	return w.git("log", "-1", "--format=%B", commit)
}

func (w *world) git(args ...string) string {
	w.t.Helper()
	out, err := w.clone.Git(w.ctx, args...)
	require.NoError(w.t, err)
	return out
}

// image is the image of a Deployment's first container.
func (w *world) image(name, deployment string) string {
	w.t.Helper()
	d, err := env.Clientset(w.t).AppsV1().Deployments(w.ns[name]).Get(w.ctx, deployment, metav1.GetOptions{})
	require.NoError(w.t, err)
	return d.Spec.Template.Spec.Containers[0].Image
}

// apiStatus reads an environment from the agent's /api/status over HTTP,
// as the CLI and a person would.
func (w *world) apiStatus(a *demo.Agent, env string) agent.EnvironmentStatus {
	w.t.Helper()
	resp, err := http.Get(a.URL + agent.PathStatus)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	var st agent.Status
	require.NoError(w.t, json.NewDecoder(resp.Body).Decode(&st))
	for _, e := range st.Environments {
		if e.Name == env {
			return e
		}
	}
	w.t.Fatalf("/api/status of %s has no environment %s", a.URL, env)
	return agent.EnvironmentStatus{}
}

type pullRequest struct {
	Number  int    `json:"number"`
	HTMLURL string `json:"html_url"`
	Head    struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (w *world) openPullRequest(head string) (pullRequest, bool) {
	w.t.Helper()
	var prs []pullRequest
	require.NoError(w.t, w.gitea.API(w.ctx, http.MethodGet, "/repos/"+w.gitea.User()+"/shop/pulls?state=open", nil, &prs))
	for _, pr := range prs {
		if pr.Head.Ref == head {
			return pr, true
		}
	}
	return pullRequest{}, false
}

// counter sums the samples of a metric family whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	samples:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue samples
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// gauge is counter for a gauge family (the sum of the matching series).
func gauge(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	return counter(t, reg, name, want)
}

// testWriter sends log lines to t.Log, so that they show for a failing test.
type testWriter struct {
	t    testing.TB
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + strings.TrimSpace(string(p)))
	return len(p), nil
}
