package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/forge"
	"github.com/baton-gitops/baton/preview"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// The Secret's values: no comment and no status may ever show them.
const (
	livePassword = "hunter2-live-value"
	prPassword   = "correct-horse-pr-value"
)

// cockpit is a preview test's world: a real Gitea holding the repository
// (env/dev and env/staging), an agent syncing both environments into the
// real control plane, and Gitea's webhooks pointed at the agent.
type cockpit struct {
	t       testing.TB
	gitea   *forge.Forge
	repo    string // repository name on Gitea
	dir     string // working clone
	dev     string // environment names
	staging string
	devNS   string
	appNS   string
	agent   *running
	logs    *logTee
}

func webDeployment(replicas int, failure string) string {
	labels := "app: web"
	if failure != "" {
		labels += "\n        " + testenv.FailureLabel + ": " + failure
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        %s
    spec:
      containers:
        - name: web
          image: registry.example/web:1.0
          resources:
            limits:
              memory: 128Mi
`, replicas, labels)
}

func cockpitFiles() map[string]string {
	return map[string]string{
		"base/kustomization.yaml":             "resources: [web.yaml, settings.yaml, secret.yaml]\n",
		"base/web.yaml":                       webDeployment(2, ""),
		"base/settings.yaml":                  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n",
		"base/secret.yaml":                    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + livePassword + "\n",
		"overlays/dev/kustomization.yaml":     "resources: [../../base]\n",
		"overlays/staging/kustomization.yaml": "resources: [../../base]\n",
	}
}

// newCockpit starts it; with pipeline, dev promotes to staging by pull
// request.
func newCockpit(t testing.TB, pipeline bool) *cockpit {
	t.Helper()
	f := newFixture(t, map[string]string{"README.md": "unused\n"}) // names and namespaces
	c := &cockpit{t: t, gitea: forge.StartT(t), dir: t.TempDir(), dev: f.env + "-dev", staging: f.env,
		devNS: env.Namespace(t), appNS: f.appNS}
	ctx := t.Context()
	c.repo = c.gitea.RepoName("cockpit")
	_, err := c.gitea.CreateRepo(ctx, c.repo)
	require.NoError(t, err)
	c.git("init", "-q", "-b", "env/staging")
	c.write(cockpitFiles())
	c.git("add", "-A")
	c.git("commit", "-q", "-m", "initial layout")
	c.git("branch", "env/dev")
	c.git("push", "-q", c.gitea.AuthenticatedURL(c.repo), "env/staging", "env/dev")
	for _, b := range []string{"env/staging", "env/dev"} {
		require.NoError(t, c.gitea.WaitBranch(ctx, c.repo, b, ""))
	}

	token := writeFile(t, "token", c.gitea.Token())
	pipelineYAML := ""
	if pipeline {
		pipelineYAML = fmt.Sprintf("pipeline:\n  order: [%s, %s]\n  edges: [{from: %s, to: %s, policy: pull-request}]\n  author: {name: Baton, email: baton@example.com}\n",
			c.dev, c.staging, c.dev, c.staging)
	}
	cfg := f.config(fmt.Sprintf(`
repositories:
  - name: deploy
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 1h
    timeout: 30s
environments:
  - name: %s
    branch: env/dev
    path: overlays/dev
    namespace: %s
    health: {timeout: 1m, soak: 1s}
  - name: %s
    branch: env/staging
    path: overlays/staging
    namespace: %s
    health: {timeout: 1m, soak: 1s}
sync: [%s, %s]
%sforge:
  kind: gitea
  url: %s
  tokenFile: %s
  repository: %s/%s
  preview: {interval: 1h}
webhook: {secretFile: %s}
listen: {webhook: ':0'}
agent:
  namespace: %s
`, c.gitea.CloneURL(c.repo), c.gitea.User(), token, c.dev, c.devNS, c.staging, c.appNS, c.dev, c.staging,
		pipelineYAML, c.gitea.URL(), token, c.gitea.User(), c.repo, writeFile(t, "webhook", f.secret), f.agentNS))

	hook, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.logs = &logTee{}
	c.agent = f.startAgent(cfg, "cockpit", func(o *Options) {
		o.WebhookListener = hook
		o.Logger = slog.New(slog.NewJSONHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	// Gitea delivers pushes and pull request events to the agent, signed.
	require.NoError(t, c.gitea.API(ctx, http.MethodPost, c.api("/hooks"), map[string]any{
		"type": "gitea", "active": true, "branch_filter": "*",
		"events": []string{"push", "pull_request", "pull_request_sync"},
		"config": map[string]string{"url": "http://" + hook.Addr().String() + PathWebhook, "content_type": "json", "secret": f.secret},
	}, nil))
	return c
}

func (c *cockpit) api(path string) string { return "/repos/" + c.gitea.User() + "/" + c.repo + path }

func (c *cockpit) git(args ...string) string {
	c.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev Person", "GIT_AUTHOR_EMAIL=dev@example.invalid",
		"GIT_COMMITTER_NAME=Dev Person", "GIT_COMMITTER_EMAIL=dev@example.invalid", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	require.NoError(c.t, err, "git %s\n%s", strings.Join(args, " "), out)
	return strings.TrimSpace(string(out))
}

func (c *cockpit) write(files map[string]string) {
	c.t.Helper()
	for name, content := range files {
		p := filepath.Join(c.dir, filepath.FromSlash(name))
		if content == "" {
			require.NoError(c.t, os.Remove(p))
			continue
		}
		require.NoError(c.t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(c.t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// commit writes files on branch (made from base when new), pushes it and
// returns the commit.
func (c *cockpit) commit(branch, base, message string, files map[string]string) string {
	c.t.Helper()
	c.git("fetch", "-q", c.gitea.AuthenticatedURL(c.repo), "+refs/heads/*:refs/remotes/origin/*")
	from := "origin/" + branch
	if _, err := exec.Command("git", "-C", c.dir, "rev-parse", "--verify", "-q", from).Output(); err != nil {
		from = "origin/" + base
	}
	c.git("checkout", "-q", "-B", branch, from)
	c.write(files)
	c.git("add", "-A")
	c.git("commit", "-q", "-m", message)
	c.git("push", "-q", "-f", c.gitea.AuthenticatedURL(c.repo), branch)
	head := c.git("rev-parse", "HEAD")
	require.NoError(c.t, c.gitea.WaitBranch(c.t.Context(), c.repo, branch, head))
	return head
}

// openPR opens a pull request and returns its number.
func (c *cockpit) openPR(head, base, title string) int {
	c.t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	require.NoError(c.t, c.gitea.API(c.t.Context(), http.MethodPost, c.api("/pulls"),
		map[string]string{"head": head, "base": base, "title": title}, &pr))
	return pr.Number
}

type giteaComment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

func (c *cockpit) comments(number int) []giteaComment {
	c.t.Helper()
	var list []giteaComment
	require.NoError(c.t, c.gitea.API(c.t.Context(), http.MethodGet, c.api(fmt.Sprintf("/issues/%d/comments", number)), nil, &list))
	return list
}

// previewComments are the comments carrying env's preview marker.
func (c *cockpit) previewComments(number int, env string) []giteaComment {
	var out []giteaComment
	for _, cm := range c.comments(number) {
		if strings.Contains(cm.Body, preview.Marker(env)) {
			out = append(out, cm)
		}
	}
	return out
}

type giteaStatus struct {
	Context     string `json:"context"`
	Status      string `json:"status"`
	Description string `json:"description"`
}

// statuses lists every status set on sha, oldest first.
func (c *cockpit) statuses(sha string) []giteaStatus {
	c.t.Helper()
	var list []giteaStatus
	require.NoError(c.t, c.gitea.API(c.t.Context(), http.MethodGet, c.api("/statuses/"+sha+"?sort=oldest&limit=50"), nil, &list))
	return list
}

// latest is the last status of context on sha, or zero.
func (c *cockpit) latest(sha, context string) giteaStatus {
	var last giteaStatus
	for _, s := range c.statuses(sha) {
		if s.Context == context {
			last = s
		}
	}
	return last
}

// waitPreview waits until the pull request's comment for env shows
// commit and the preview status of commit is final, and returns both.
func (c *cockpit) waitPreview(number int, env, commit string, within time.Duration) (giteaComment, giteaStatus) {
	c.t.Helper()
	var cm giteaComment
	var st giteaStatus
	// Every 100 ms: a tighter loop would load the forge being measured.
	err := wait.PollUntilContextTimeout(c.t.Context(), 100*time.Millisecond, within, true, func(context.Context) (bool, error) {
		list := c.previewComments(number, env)
		if len(list) == 0 || !strings.Contains(list[0].Body, commit[:12]) {
			return false, nil
		}
		cm = list[0]
		st = c.latest(commit, preview.StatusContext(env))
		return st.Status == "success" || st.Status == "failure", nil
	})
	require.NoError(c.t, err, "waiting %s for the preview of #%d at %s", within, number, commit[:7])
	return cm, st
}

// logTee keeps the agent's JSON log lines for the measurements.
type logTee struct {
	mu    sync.Mutex // guards lines
	lines []map[string]any
}

func (l *logTee) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			l.mu.Lock()
			l.lines = append(l.lines, m)
			l.mu.Unlock()
		}
	}
	return len(p), nil
}

// previews are the "preview" log records of pull request number.
func (l *logTee) previews(number int) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if m["msg"] == "preview" && m["number"] == float64(number) {
			out = append(out, m)
		}
	}
	return out
}

func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, v := range []string{livePassword, prPassword} {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
			require.NotContains(t, text, form, "%s shows a Secret's value", what)
		}
	}
}

// The pull request is the cockpit, on a real Gitea, control plane and
// agent: a person's pull request gets one preview comment, updated in
// place, and a status; broken and refused changes fail it with the
// reason; a merge is synced and its commit gets the deploy status; an
// OOMKilled release fails it with the cause; a promotion pull request gets
// its preview too; no comment or status shows a Secret's value.
func TestPullRequestCockpit(t *testing.T) {
	c := newCockpit(t, true)
	ctx := t.Context()
	initial := c.git("rev-parse", "env/staging")
	eventually(t, 60*time.Second, "both environments synced and healthy", func() bool {
		st := c.agent.agent.Status()
		for _, e := range st.Environments {
			if e.Synced == nil || e.Synced.Commit != initial || e.Health.Status != "Healthy" {
				return false
			}
		}
		return true
	})
	eventually(t, 30*time.Second, "the initial commit's deploy statuses", func() bool {
		return c.latest(initial, DeployStatusContext(c.staging)).Status == "success" &&
			c.latest(initial, DeployStatusContext(c.dev)).Status == "success"
	})

	// A person's pull request: three replicas, the ConfigMap removed, a
	// new password.
	t.Run("preview", func(t *testing.T) {
		head := c.commit("scale-web", "env/staging", "Scale web to 3, drop settings", map[string]string{
			"base/web.yaml":           webDeployment(3, ""),
			"base/settings.yaml":      "",
			"base/kustomization.yaml": "resources: [web.yaml, secret.yaml]\n",
			"base/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + prPassword + "\n",
		})
		opened := time.Now()
		number := c.openPR("scale-web", "env/staging", "Scale web")
		cm, st := c.waitPreview(number, c.staging, head, 60*time.Second)
		t.Logf("pull request opened → comment and status in %.1fs", time.Since(opened).Seconds())
		require.Equal(t, "success", st.Status)
		require.Contains(t, st.Description, "would change")
		for _, want := range []string{
			"| configured | `Deployment/" + c.appNS + "/web` | `replicas 2 → 3` |",
			"| pruned | `ConfigMap/" + c.appNS + "/settings` |",
			"| configured | `Secret/" + c.appNS + "/db` |",
			"<details><summary>configured Deployment/" + c.appNS + "/web</summary>",
		} {
			require.Contains(t, cm.Body, want)
		}
		noSecrets(t, "the comment", cm.Body)
		require.Len(t, c.previewComments(number, c.staging), 1)
		if c.dev != c.staging {
			require.Empty(t, c.previewComments(number, c.dev), "a preview for an environment of another branch")
		}

		// `baton diff --env staging --revision scale-web` computes the same
		// report: the same objects, highlights and diffs.
		text := cliText(t, c, c.staging, "scale-web")
		for _, o := range []string{"Deployment/" + c.appNS + "/web", "ConfigMap/" + c.appNS + "/settings", "replicas 2 → 3"} {
			require.Contains(t, text, o)
		}
		for _, hunk := range strings.Split(text, "\n# ")[1:] {
			diff := strings.TrimSuffix(hunk[strings.Index(hunk, "\n")+1:], "\n")
			if i := strings.LastIndex(diff, "\n"); strings.Contains(diff[i:], "would change") {
				diff = diff[:i] // the summary line that ends the text
			}
			require.Contains(t, strings.ReplaceAll(cm.Body, "\u200b", ""), diff, "a diff of the text is not in the comment")
		}

		// A second push: the same comment, updated.
		head2 := c.commit("scale-web", "env/staging", "Four replicas", map[string]string{"base/web.yaml": webDeployment(4, "")})
		pushed := time.Now()
		cm2, st2 := c.waitPreview(number, c.staging, head2, 60*time.Second)
		t.Logf("push to the pull request → comment and status in %.1fs", time.Since(pushed).Seconds())
		require.Equal(t, cm.ID, cm2.ID, "the comment was not updated in place")
		require.Len(t, c.previewComments(number, c.staging), 1)
		require.Contains(t, cm2.Body, "`replicas 2 → 4`")
		t.Logf("the preview comment, as Gitea holds it:\n%s", cm2.Body)
		require.Equal(t, "success", st2.Status)
		for _, rec := range c.logs.previews(number) {
			t.Logf("preview run: %v API calls, comment %v bytes, %v", rec["apiCalls"], rec["commentBytes"], rec["duration"])
		}

		// Merged: staging syncs the merge commit; its deploy status goes
		// pending, then success with the time it took.
		merge := mergePR(t, c, number)
		eventually(t, 60*time.Second, "the merge commit's deploy status success", func() bool {
			return c.latest(merge, DeployStatusContext(c.staging)).Status == "success"
		})
		var states []string
		for _, s := range c.statuses(merge) {
			if s.Context == DeployStatusContext(c.staging) {
				states = append(states, s.Status+": "+s.Description)
				noSecrets(t, "a deploy status", s.Description)
			}
		}
		require.GreaterOrEqual(t, len(states), 3, "states %q", states)
		require.Equal(t, "pending: applying", states[0], "states %q", states)
		require.True(t, strings.HasPrefix(states[1], "pending: applied"), "states %q", states)
		require.Regexp(t, `^success: healthy in [0-9.hms]+$`, states[len(states)-1])
		t.Logf("deploy statuses of the merge commit: %q", states)
		require.Equal(t, "4", fmt.Sprint(deploymentReplicas(t, c.appNS, "web")))
	})

	t.Run("invalid YAML fails naming the file and line", func(t *testing.T) {
		head := c.commit("broken", "env/staging", "Break the YAML", map[string]string{
			"base/web.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: [3\n"})
		number := c.openPR("broken", "env/staging", "Broken")
		cm, st := c.waitPreview(number, c.staging, head, 60*time.Second)
		require.Equal(t, "failure", st.Status)
		require.Regexp(t, `^render overlays/staging: base/web\.yaml:\d+: `, st.Description)
		require.Contains(t, cm.Body, "❌ would fail")
		require.Contains(t, cm.Body, "**No object was compared:**")
	})

	t.Run("a refused object fails naming it", func(t *testing.T) {
		head := c.commit("refused", "env/staging", "Add an invalid ConfigMap", map[string]string{
			"base/bad.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\ndata:\n  a: b\n",
			"base/kustomization.yaml": "resources: [web.yaml, secret.yaml, bad.yaml]\n"})
		number := c.openPR("refused", "env/staging", "Refused")
		cm, st := c.waitPreview(number, c.staging, head, 60*time.Second)
		require.Equal(t, "failure", st.Status)
		require.Contains(t, st.Description, "Bad_Name")
		require.Contains(t, cm.Body, "| failed | `ConfigMap/"+c.appNS+"/Bad_Name` |")
	})

	t.Run("an object outside the environment's scope fails naming the rule", func(t *testing.T) {
		head := c.commit("outside", "env/staging", "Plant a ConfigMap in kube-public", map[string]string{
			"base/planted.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: planted\n  namespace: kube-public\ndata:\n  a: b\n",
			"base/kustomization.yaml": "resources: [web.yaml, secret.yaml, planted.yaml]\n"})
		number := c.openPR("outside", "env/staging", "Outside")
		cm, st := c.waitPreview(number, c.staging, head, 60*time.Second)
		t.Logf("preview status of an out-of-scope object: %s: %s", st.Status, st.Description)
		require.Equal(t, "failure", st.Status)
		require.Contains(t, st.Description, "ConfigMap/kube-public/planted")
		require.Contains(t, st.Description, "scope")
		require.Contains(t, cm.Body, "base/planted.yaml")
		_, err := env.Clientset(t).CoreV1().ConfigMaps("kube-public").Get(t.Context(), "planted", metav1.GetOptions{})
		require.True(t, apierrors.IsNotFound(err), "a preview applies nothing: %v", err)
	})

	t.Run("an OOMKilled release fails the deploy status with the cause", func(t *testing.T) {
		bad := c.commit("env/staging", "env/staging", "Release that runs out of memory", map[string]string{
			"base/web.yaml": webDeployment(4, testenv.FailOOMKilled)})
		eventually(t, 90*time.Second, "the deploy status failure", func() bool {
			return c.latest(bad, DeployStatusContext(c.staging)).Status == "failure"
		})
		st := c.latest(bad, DeployStatusContext(c.staging))
		t.Logf("deploy status of the OOMKilled release: %s: %s", st.Status, st.Description)
		require.Contains(t, st.Description, "oomkilled")
		require.Contains(t, st.Description, "web") // the container
	})

	t.Run("a promotion pull request gets its preview", func(t *testing.T) {
		devHead := c.commit("env/dev", "env/dev", "Dev: five replicas", map[string]string{"base/web.yaml": webDeployment(5, "")})
		var number int
		var head string
		eventually(t, 90*time.Second, "the promotion pull request of "+devHead[:7], func() bool {
			var prs []struct {
				Number int    `json:"number"`
				Title  string `json:"title"`
				Head   struct {
					Ref string `json:"ref"`
					SHA string `json:"sha"`
				} `json:"head"`
			}
			require.NoError(t, c.gitea.API(ctx, http.MethodGet, c.api("/pulls?state=open"), nil, &prs))
			for _, pr := range prs {
				if strings.HasPrefix(pr.Head.Ref, "baton/promote-") && strings.Contains(pr.Title, "@"+devHead[:7]) {
					number, head = pr.Number, pr.Head.SHA
					return true
				}
			}
			return false
		})
		cm, st := c.waitPreview(number, c.staging, head, 60*time.Second)
		require.Contains(t, cm.Body, "`replicas 4 → 5`")
		require.Equal(t, "success", st.Status)
	})

	// Nothing anywhere shows the Secret.
	var prs []struct {
		Number int `json:"number"`
		Head   struct {
			SHA string `json:"sha"`
		} `json:"head"`
	}
	require.NoError(t, c.gitea.API(ctx, http.MethodGet, c.api("/pulls?state=all"), nil, &prs))
	for _, pr := range prs {
		for _, cm := range c.comments(pr.Number) {
			noSecrets(t, fmt.Sprintf("a comment on #%d", pr.Number), cm.Body)
		}
		for _, s := range c.statuses(pr.Head.SHA) {
			noSecrets(t, "a status", s.Description)
		}
	}
}

// cliText is what `baton diff --env ENV --revision BRANCH` prints: the
// revision resolved from the branch, agent.DryRun, the report as text.
func cliText(t *testing.T, c *cockpit, envName, branch string) string {
	t.Helper()
	cfg := c.agent.agent.cfg
	e := *cfg.Environment(envName)
	repo, err := source.NewRepository(RepositorySettings(*cfg.Repository(e.Repository), []string{branch}), source.Options{CacheDir: t.TempDir()})
	require.NoError(t, err)
	defer repo.Close()
	_, err = repo.Poll(t.Context())
	require.NoError(t, err)
	rev := repo.Revision(branch)
	require.NotNil(t, rev)
	r, err := render.New(render.Options{CacheSize: -1})
	require.NoError(t, err)
	rec, err := reconciler.New(env.Config(), reconciler.Options{InventoryNamespace: cfg.Agent.Namespace, DisableCache: true})
	require.NoError(t, err)
	defer rec.Close()
	res, err := DryRun(t.Context(), r, rec, e, rev)
	var b bytes.Buffer
	require.NoError(t, preview.NewReport(e.Name, rev.Commit, branch, e.Path, res, err).WriteText(&b, false))
	return b.String()
}

// mergePR merges a pull request once Gitea says it can and returns the
// merge commit.
func mergePR(t *testing.T, c *cockpit, number int) string {
	t.Helper()
	ctx := t.Context()
	var pr struct {
		Mergeable      bool   `json:"mergeable"`
		Merged         bool   `json:"merged"`
		MergeCommitSHA string `json:"merge_commit_sha"`
	}
	eventually(t, 30*time.Second, "the pull request mergeable", func() bool {
		require.NoError(t, c.gitea.API(ctx, http.MethodGet, c.api(fmt.Sprintf("/pulls/%d", number)), nil, &pr))
		return pr.Mergeable
	})
	require.NoError(t, c.gitea.API(ctx, http.MethodPost, c.api(fmt.Sprintf("/pulls/%d/merge", number)), map[string]string{"Do": "merge"}, nil))
	require.NoError(t, c.gitea.API(ctx, http.MethodGet, c.api(fmt.Sprintf("/pulls/%d", number)), nil, &pr))
	require.True(t, pr.Merged)
	return pr.MergeCommitSHA
}

func deploymentReplicas(t *testing.T, ns, name string) int32 {
	d, err := env.Clientset(t).AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return *d.Spec.Replicas
}
