package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// giteaPull is the part of Gitea's pull request the test reads.
type giteaPull struct {
	Number  int    `json:"number"`
	Title   string `json:"title"`
	HTMLURL string `json:"html_url"`
	Head    struct {
		Ref string `json:"ref"`
	} `json:"head"`
}

// A bad promotion into prod (a pull-request edge) is rolled back by hand:
// baton rollback opens the revert pull request on a real Gitea without
// waiting for any gate; once a person merges it, prod is held (the
// promoter refuses that content again) and baton history tells the story.
func TestRollbackOpensARevertPullRequestAndHolds(t *testing.T) {
	g := forge.StartT(t)
	ctx := t.Context()
	name := g.RepoName("deploy")
	_, err := g.CreateRepo(ctx, name)
	require.NoError(t, err)

	// env/prod: initial; env/staging: green; env/prod: the promotion of
	// green, as Baton writes it.
	dir := t.TempDir()
	who := []string{"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com"}
	git := func(args ...string) string { return gitserver.RunGit(t, dir, who, args...) }
	write := func(files map[string]string) {
		for p, content := range files {
			require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644))
		}
		git("add", "-A")
	}
	git("init", "-q", "-b", "env/prod")
	files := baseFiles()
	files["overlays/prod/kustomization.yaml"] = "resources:\n  - ../../base\n"
	write(files)
	git("commit", "-q", "-m", "initial")
	git("checkout", "-q", "-b", "env/staging")
	write(map[string]string{"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"})
	git("commit", "-q", "-m", "make it green")
	green := git("rev-parse", "HEAD")
	git("checkout", "-q", "env/prod")
	write(map[string]string{"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"})
	git("commit", "-q", "-m", "promote staging@"+green[:12]+" to prod\n\nBaton-Promoted-From: staging@"+green+"\n")
	promotion := git("rev-parse", "HEAD")
	git("push", "-q", g.AuthenticatedURL(name), "env/prod", "env/staging")
	require.NoError(t, g.WaitBranch(ctx, name, "env/prod", promotion))
	require.NoError(t, g.WaitBranch(ctx, name, "env/staging", green))

	cfgDir := t.TempDir()
	token := filepath.Join(cfgDir, "token")
	require.NoError(t, os.WriteFile(token, []byte(g.Token()+"\n"), 0o600))
	cfgPath := filepath.Join(cfgDir, "baton.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`repositories:
  - name: deploy
    url: %s
    auth: {username: %s, tokenFile: %s}
environments:
  - {name: staging, branch: env/staging, path: overlays/staging, namespace: shop-staging}
  - {name: prod, branch: env/prod, path: overlays/prod, namespace: shop}
pipeline:
  order: [staging, prod]
  edges: [{from: staging, to: prod, policy: pull-request}]
  author: {name: Baton, email: baton@example.com}
forge: {kind: gitea, url: %s, tokenFile: %s, repository: %s/%s}
agent: {cacheDir: %s}
`, g.CloneURL(name), g.User(), token, g.URL(), token, g.User(), name, filepath.Join(cfgDir, "cache"))), 0o600))
	baton := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		full := append([]string{args[0], "--config", cfgPath, "--kubeconfig", env.KubeconfigPath()}, args[1:]...)
		return run(context.Background(), full, &stdout, &stderr), stdout.String(), stderr.String()
	}
	n := &normalizer{}
	n.add(`http://127\.0\.0\.1:\d+/`, "GITEA/", false)
	n.add(`\b[0-9a-f]{40}\b`, "COMMIT", true)
	n.add(`\b[0-9a-f]{7,12}\b`, "SHORT", true)
	n.add(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`, "TIME", false)
	n.add(regexp.QuoteMeta(name), "REPO", false)

	code, _, errOut := baton("rollback", "--env", "prod")
	require.Equal(t, 2, code)
	require.Equal(t, "baton rollback: --reason \"why\" is required: it goes into the revert commit\n", errOut)
	code, _, errOut = baton("rollback", "--env", "staging", "--reason", "x")
	require.Equal(t, 1, code)
	require.Equal(t, "baton rollback: no pipeline edge leads into staging: only promotions are rolled back (git revert by hand otherwise)\n", errOut)

	code, out, errOut := baton("rollback", "--env", "prod", "--reason", "INC-7: 5xx after the promotion")
	require.Equal(t, 0, code, errOut)
	golden(t, "rollback.golden", n.apply(out))
	var pulls []giteaPull
	require.NoError(t, g.API(ctx, http.MethodGet, fmt.Sprintf("/repos/%s/%s/pulls?state=open", g.User(), name), nil, &pulls))
	require.Len(t, pulls, 1)
	require.Equal(t, "baton/revert-staging-to-prod", pulls[0].Head.Ref)
	require.Equal(t, "Revert promotion of staging@"+green[:12]+" ("+promotion[:12]+")", pulls[0].Title)
	require.Contains(t, out, pulls[0].HTMLURL)
	require.Equal(t, promotion, headOf(t, g, name, "env/prod"), "a pull-request edge's rollback is not pushed to the branch")

	// A reviewer merges it (Gitea checks mergeability in the background).
	eventually(t, 30*time.Second, "Gitea to merge the revert pull request", func() bool {
		return g.API(ctx, http.MethodPost, fmt.Sprintf("/repos/%s/%s/pulls/%d/merge", g.User(), name, pulls[0].Number),
			map[string]any{"Do": "merge"}, nil) == nil
	})
	merged := headOf(t, g, name, "env/prod")
	require.NotEqual(t, promotion, merged)

	// The promoter now holds staging's green: the same evaluation as the
	// agent's, with staging healthy for an hour.
	cfg, err := config.Load(cfgPath)
	require.NoError(t, err)
	cfg.Agent.CacheDir = t.TempDir()
	p, err := agent.NewPipelinePromoter(agent.PipelinePromoterOptions{Config: cfg, CacheDir: cfg.Agent.CacheDir})
	require.NoError(t, err)
	defer p.Close()
	repo, rev, err := openBranch(ctx, cfg, cfg.Environment("staging"), "env/staging")
	require.NoError(t, err)
	defer repo.Close()
	hour := time.Now().Add(-time.Hour)
	res, err := p.Promote(ctx, agent.PromotionRequest{From: "staging", To: "prod", Revision: rev, SyncedAt: hour, Healthy: true, HealthySince: hour})
	require.NoError(t, err)
	require.Equal(t, agent.PromotionHeld, res.Outcome, "%+v", res)

	code, out, errOut = baton("history", "--env", "prod")
	require.Equal(t, 0, code, errOut)
	golden(t, "history.golden", n.apply(out))
	require.Contains(t, out, "reverts the promotion of staging@"+green)
}

// headOf is a branch's commit on the forge.
func headOf(t *testing.T, g *forge.Forge, repo, branch string) string {
	t.Helper()
	var b struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	require.NoError(t, g.API(t.Context(), http.MethodGet, fmt.Sprintf("/repos/%s/%s/branches/%s", g.User(), repo, strings.ReplaceAll(branch, "/", "%2F")), nil, &b))
	return b.Commit.ID
}
