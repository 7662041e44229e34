package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

func TestHelpShowsAnExampleForEveryVerb(t *testing.T) {
	root := (&cli{}).rootCommand()
	for _, v := range root.Commands() {
		if v.Name() == "help" || v.Name() == "completion" {
			continue
		}
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{v.Name(), "--help"}, &stdout, &stderr)
		require.Equal(t, 0, code, v.Name())
		require.Contains(t, stdout.String(), "Usage:\n  baton "+v.Name(), v.Name())
		require.Contains(t, stdout.String(), "Examples:\n  baton "+v.Name(), v.Name())
		for _, global := range []string{"--kubeconfig", "--context", "--namespace", "--as", "--request-timeout", "--config"} {
			require.Contains(t, stdout.String(), global, v.Name())
		}
	}
}

func TestErrorsAreOneLineWithAnExitCode(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "baton.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("repositories: []\nenvironments: []\nsyncs: [dev]\n"), 0o600))
	tests := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"frobnicate"}, 2, "baton: unknown command \"frobnicate\" (see baton --help)\n"},
		{[]string{"render", "--config", bad}, 1, "baton render: " + bad + ": syncs: unknown field\n"},
		{[]string{"render", "--config", filepath.Join(dir, "none.yaml"), "--env", "dev"}, 1,
			"baton render: read configuration: open " + filepath.Join(dir, "none.yaml") + ": no such file or directory\n"},
		{[]string{"--config", "../../internal/config/testdata/baton.yaml", "render", "--env", "qa"}, 1,
			"baton render: no environment \"qa\" in the configuration (known: dev, staging, prod, billing-dev, billing-prod)\n"},
		{[]string{"render", "--config", "../../internal/config/testdata/baton.yaml"}, 2, "baton render: --env is required\n"},
		{[]string{"render", "--env", "dev", "-o", "xml"}, 2, "baton render: -o xml: want one of yaml, json, table\n"},
		{[]string{"set-image", "--env", "dev", "app"}, 2, "baton set-image: \"app\": want IMAGE=NEWIMAGE[:TAG][@DIGEST]\n"},
		{[]string{"version", "extra"}, 2, "baton version: unexpected argument \"extra\"\n"},
	}
	for _, tc := range tests {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, &stdout, &stderr)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr.String())
		require.Equal(t, tc.stderr, stderr.String(), "%v", tc.args)
		require.Empty(t, stdout.String(), "%v", tc.args)
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr strings.Builder
	require.Equal(t, 0, run(context.Background(), []string{"version", "-o", "json"}, &stdout, &stderr))
	var v struct{ Version, GoVersion string }
	require.NoError(t, json.Unmarshal([]byte(stdout.String()), &v))
	require.Equal(t, "dev", v.Version)
}

func TestRender(t *testing.T) {
	w := newWorld(t)
	code, out, errOut := w.baton("render", "--env", "dev")
	require.Equal(t, 0, code, errOut)
	golden(t, "render.golden", out)

	code, out, errOut = w.baton("render", "--env", "dev", "-o", "table")
	require.Equal(t, 0, code, errOut)
	golden(t, "render-table.golden", out)

	// --revision: an older commit by its short hash, and another branch.
	old := w.repo.Head(t, "env/dev")
	w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"}})
	code, out, errOut = w.baton("render", "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "color: green")
	code, out, errOut = w.baton("render", "--env", "dev", "--revision", old[:7])
	require.Equal(t, 0, code, errOut)
	golden(t, "render.golden", out)
	w.repo.ForcePush(t, "preview", old, gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: red\n"}})
	code, out, errOut = w.baton("render", "--env", "dev", "--revision", "preview")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "color: red")

	code, _, errOut = w.baton("render", "--env", "dev", "--revision", "no-such-branch")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "baton render: revision no-such-branch is neither a commit of env/dev nor a branch")
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
}

// apply syncs the dev environment at its branch head with the reconciler,
// as the agent would.
func (w *world) apply() {
	w.t.Helper()
	cfg, err := config.Load(w.config)
	require.NoError(w.t, err)
	env := cfg.Environment("dev")
	ctx := context.Background()
	repo, rev, err := openBranch(ctx, cfg, env, env.Branch)
	require.NoError(w.t, err)
	defer repo.Close()
	r, err := render.New(render.Options{})
	require.NoError(w.t, err)
	res, err := r.Render(ctx, rev.Snapshot, env.Path)
	require.NoError(w.t, err)
	rec, err := reconciler.New(envConfig(), reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	require.NoError(w.t, err)
	defer rec.Close()
	_, err = rec.Sync(ctx, agent.SyncRequest(*env, rev.Commit, res.Objects))
	require.NoError(w.t, err)
}

func TestDiffExitCodes(t *testing.T) {
	w := newWorld(t)
	n := w.normalizer()

	// Nothing applied yet: everything would be created.
	code, out, errOut := w.baton("diff", "--env", "dev")
	require.Equal(t, 1, code, errOut)
	golden(t, "diff-create.golden", n.apply(out))

	w.apply()
	code, out, errOut = w.baton("diff", "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "no differences (3 unchanged)\n", out)

	// A change in git, previewed before it is applied; colours forced.
	w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"}})
	code, out, errOut = w.baton("diff", "--env", "dev", "--color", "always")
	require.Equal(t, 1, code, errOut)
	golden(t, "diff-change.golden", n.apply(out))

	code, out, errOut = w.baton("diff", "--env", "dev", "-o", "json")
	require.Equal(t, 1, code, errOut)
	var report struct {
		Differs bool
		Changes []struct{ Object, Action string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &report))
	require.True(t, report.Differs)
	require.Len(t, report.Changes, 1)
	require.Equal(t, "configured", report.Changes[0].Action)

	// A failure is exit code 2, not 1.
	code, _, errOut = w.baton("diff", "--env", "dev", "--revision", "no-such-branch")
	require.Equal(t, 2, code, errOut)
}

func TestStatus(t *testing.T) {
	w := newWorld(t)
	a := w.startAgent(nil)
	head := w.repo.Head(t, "env/dev")
	eventually(t, 60*time.Second, "the agent to sync and report health", func() bool {
		s := a.Status().Environments[0]
		return s.Synced != nil && s.Synced.Commit == head && s.Health.Status == "Healthy"
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	_, err := w.waitReady(ctx, "dev")
	require.NoError(t, err)

	n := w.normalizer()
	code, out, errOut := w.baton("status", "--server", a.url, "-o", "json")
	require.Equal(t, 0, code, errOut)
	golden(t, "status-server.golden.json", n.apply(out))

	// From the cluster's Environment objects: the same, but for who reports.
	code, out, errOut = w.baton("status", "-o", "json")
	require.Equal(t, 0, code, errOut)
	golden(t, "status-objects.golden.json", n.apply(out))

	// Computed from git and the cluster where no agent reports (an
	// empty namespace for the objects).
	code, out, errOut = w.baton("status", "-o", "json", "--compute", "--namespace", w.appNS)
	require.Equal(t, 0, code, errOut)
	golden(t, "status-computed.golden.json", n.apply(out))

	code, out, errOut = w.baton("status")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^ENVIRONMENT\s+SYNCED\s+HEALTH\s+LAST SYNC\s+SOAK\s+DRIFTED\s+PROMOTION\s+REPORTED BY$`, out)
	require.Regexp(t, `(?m)^dev\s+`+head[:12]+`\s+Healthy\s+\d+s\s+(done|0s/1s)\s+0\s+-\s+cluster \S+/`+w.agentNS+`$`, out)

	// Nobody reports it: the configuration's view, and a warning.
	code, out, errOut = w.baton("status", "--namespace", w.appNS)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^dev\s+-\s+-\s+-\s+-\s+-\s+-\s+-$`, out)
}

func TestSetImage(t *testing.T) {
	w := newWorld(t)
	before := w.repo.Head(t, "env/dev")
	n := w.normalizer()
	code, out, errOut := w.baton("set-image", "--env", "dev", "app=registry.example/app:1.4.2", "sidecar=:2.0")
	require.Equal(t, 0, code, errOut)
	golden(t, "set-image.golden", n.apply(out))
	after := w.repo.Head(t, "env/dev")
	require.NotEqual(t, before, after)
	require.Equal(t, before, w.repo.Parent(t, after))
	golden(t, "set-image-kustomization.golden", w.gitShow("env/dev", "overlays/dev/kustomization.yaml"))
	msg := gitserver.RunGit(t, w.repo.Path, nil, "log", "-1", "--format=%an <%ae>%n%B", "env/dev")
	require.Equal(t, "CI Bot <ci@example.com>\nset-image dev: app=registry.example/app:1.4.2 sidecar=:2.0\n\nBaton-Set-Image: app=registry.example/app:1.4.2 sidecar=:2.0", msg)

	// The same bump again changes nothing.
	code, out, errOut = w.baton("set-image", "--env", "dev", "app=registry.example/app:1.4.2", "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"changed": false`)
	require.Equal(t, after, w.repo.Head(t, "env/dev"))
}

// When someone else moves the branch between the read and the push, the
// lease fails and the edit is redone on their commit: nothing is lost.
func TestSetImageRedoesTheEditWhenTheLeaseIsLost(t *testing.T) {
	w := newWorld(t)
	cfg, err := config.Load(w.config)
	require.NoError(t, err)
	env := cfg.Environment("dev")
	ctx := context.Background()
	repo, stale, err := openBranch(ctx, cfg, env, env.Branch)
	require.NoError(t, err)
	defer repo.Close()
	theirs := w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/extra.txt": "theirs\n"}})

	img, err := parseImageArg("app=registry.example/app:2.0.0")
	require.NoError(t, err)
	out, err := editImages(ctx, repo, stale, env, []render.Image{img}, source.Signature{Name: "CI", Email: "ci@example.com"}, "app")
	require.NoError(t, err)
	require.True(t, out.Changed)
	head := w.repo.Head(t, "env/dev")
	require.Equal(t, out.Commit, head)
	require.Equal(t, theirs, w.repo.Parent(t, head), "the edit was not rebuilt on the other writer's commit")
	require.Equal(t, "theirs\n", w.gitShow("env/dev", "base/extra.txt"))
	require.Contains(t, w.gitShow("env/dev", "overlays/dev/kustomization.yaml"), `newTag: "2.0.0"`)
}

func TestParseImageArg(t *testing.T) {
	tests := []struct {
		arg  string
		want render.Image
		err  string
	}{
		{"app=registry.example/app:1.4.2", render.Image{Name: "app", NewName: "registry.example/app", NewTag: "1.4.2"}, ""},
		{"app=:1.4.2", render.Image{Name: "app", NewTag: "1.4.2"}, ""},
		{"app=app:2", render.Image{Name: "app", NewTag: "2"}, ""},
		{"app=registry.example:5000/app:3", render.Image{Name: "app", NewName: "registry.example:5000/app", NewTag: "3"}, ""},
		{"app=registry.example/app@sha256:abc", render.Image{Name: "app", NewName: "registry.example/app", Digest: "sha256:abc"}, ""},
		{"app=registry.example:5000/app", render.Image{}, `"app=registry.example:5000/app": give a tag (:1.4.2) or a digest (@sha256:...)`},
		{"app=x@abc", render.Image{}, `"app=x@abc": digest "abc": want ALGORITHM:HEX such as sha256:...`},
		{"=x:1", render.Image{}, `"=x:1": want IMAGE=NEWIMAGE[:TAG][@DIGEST]`},
	}
	for _, tc := range tests {
		got, err := parseImageArg(tc.arg)
		if tc.err != "" {
			require.EqualError(t, err, tc.err, tc.arg)
			continue
		}
		require.NoError(t, err, tc.arg)
		require.Equal(t, tc.want, got, tc.arg)
	}
}

// holdPromoter stands in for the agent's promoter in TestPromote so that
// only the CLI promotes; it never decides anything.
type holdPromoter struct{}

func (holdPromoter) Promote(context.Context, agent.PromotionRequest) (agent.PromotionResult, error) {
	return agent.PromotionResult{Outcome: agent.PromotionBlocked, Reason: "held-by-test"}, nil
}

func TestPromote(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("  - name: staging\n    branch: env/staging\n    path: overlays/staging\n    namespace: "+w.appNS+"\n",
		"pipeline:\n  order: [dev, staging]\n  edges: [{from: dev, to: staging, policy: auto}]\n  author: {name: CI Bot, email: ci@example.com}\n")
	green := w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"}})

	code, _, errOut := w.baton("promote", "--from", "dev", "--to", "staging")
	require.Equal(t, 1, code)
	require.Equal(t, "baton promote: dev has not synced a revision: nothing to promote\n", errOut)

	// Synced but computed from the cluster: how long dev has been healthy
	// is unknown, so the soak blocks, by the same gates as the agent's.
	w.apply()
	code, out, errOut := w.baton("promote", "--from", "dev", "--to", "staging")
	require.Equal(t, 1, code, errOut)
	require.Equal(t, "dev -> staging "+green[:12]+": blocked\n", out)
	require.Regexp(t, `^baton promote: promotion blocked: dev -> staging \(soak\): .+\n$`, errOut)

	code, _, errOut = w.baton("promote", "--from", "dev", "--to", "staging", "--revision", "deadbeef")
	require.Equal(t, 1, code)
	require.Equal(t, "baton promote: --revision deadbeef: dev is synced at "+green[:12]+"; only a synced revision is promoted\n", errOut)

	// The agent knows how long dev has been healthy: through --server the
	// soak passes and the promotion is pushed.
	cfg, err := config.Load(w.config)
	require.NoError(t, err)
	cfg.Agent.CacheDir = t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a, err := agent.New(agent.Options{Config: cfg, REST: envConfig(), Listener: ln, Promoter: holdPromoter{},
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	eventually(t, 60*time.Second, "dev healthy at the green commit for its soak", func() bool {
		s := a.Status().Environments[0]
		return s.Health.Status == "Healthy" && s.Health.Revision == green && time.Since(s.Health.Since) > 1100*time.Millisecond
	})
	server := "http://" + ln.Addr().String()
	code, out, errOut = w.baton("promote", "--from", "dev", "--to", "staging", "--server", server)
	require.Equal(t, 0, code, errOut)
	promoted := w.repo.Head(t, "env/staging")
	require.Equal(t, "dev -> staging "+green[:12]+": pushed "+promoted[:12]+"\n", out)
	require.Contains(t, w.gitShow("env/staging", "base/settings.yaml"), "color: green")

	code, out, errOut = w.baton("promote", "--from", "dev", "--to", "staging", "--server", server, "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"outcome": "up-to-date"`)
	require.Equal(t, promoted, w.repo.Head(t, "env/staging"))
}

// The agent verb wires everything: it syncs, serves metrics from the
// metrics package and readiness, logs one JSON line per sync, and exits 0
// when its context ends (SIGTERM).
func TestAgentVerb(t *testing.T) {
	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // the agent listens there itself
	w.writeConfig("", "listen: {http: \""+addr+"\"}\n")

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"agent", "--config", w.config, "--kubeconfig", env.KubeconfigPath(), "--identity", "cli-agent"}, &stdout, &stderr)
	}()
	head := w.repo.Head(t, "env/dev")
	eventually(t, 60*time.Second, "the agent to be ready", func() bool {
		resp, err := http.Get("http://" + addr + agent.PathReadyz)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(stderr.String(), `"msg":"sync"`)
	})
	resp, err := http.Get("http://" + addr + agent.PathMetrics)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(body), `baton_sync_total{environment="dev",result="success"} 1`)
	require.Contains(t, string(body), "baton_leader 1")

	var line map[string]any
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, `"msg":"sync"`) {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
			break
		}
	}
	require.Equal(t, "dev", line["environment"])
	require.Equal(t, head[:12], line["revision"])
	require.Equal(t, "success", line["result"])
	require.Equal(t, map[string]any{"created": 3.0}, line["counts"])

	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop within 30s of SIGTERM")
	}
	require.Contains(t, stderr.String(), `"msg":"agent stopped"`)
}

func TestSoakProgress(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	e := agent.EnvironmentStatus{Synced: &agent.RevisionInfo{Commit: "a"}, Soak: source.Duration{Duration: 2 * time.Minute},
		Health: agent.HealthInfo{Status: "Healthy", Revision: "a", Since: now.Add(-45500 * time.Millisecond)}}
	require.Equal(t, "45s/2m0s", soakProgress(e, now))
	e.Health.Since = now.Add(-2 * time.Minute)
	require.Equal(t, "done", soakProgress(e, now))
	e.Health.Status = "Degraded"
	require.Equal(t, "-", soakProgress(e, now))
	e.Health.Status, e.Health.Revision = "Healthy", "older"
	require.Equal(t, "-", soakProgress(e, now))
}
