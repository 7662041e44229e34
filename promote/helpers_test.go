package promote_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/promote"
	giteaforge "github.com/baton-gitops/baton/promote/forge/gitea"
	"github.com/baton-gitops/baton/source"
)

// clock is a test clock: the soak passes when the test says so.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testLogger sends the promoter's debug log to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// laterClock gives a promoter a clock one second after the fixture's.
func laterClock(f *fixture) func(*promote.Options) {
	return func(o *promote.Options) { o.Clock = &clock{now: f.clock.Now().Add(time.Second)} }
}

var pipeline = promote.Pipeline{
	Environments: []promote.Environment{
		{Name: "dev", Branch: "env/dev", Overlay: "overlays/dev"},
		{Name: "staging", Branch: "env/staging", Overlay: "overlays/staging"},
		{Name: "prod", Branch: "env/prod", Overlay: "overlays/prod"},
	},
}

var bot = source.Signature{Name: "Baton", Email: "baton@example.invalid"}

func overlay(tag string, replicas int) map[string]string {
	return map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\npatches:\n  - path: replicas.yaml\nimages:\n  - name: ghcr.io/acme/web\n    newTag: \"" + tag + "\"\n",
		"replicas.yaml":      fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: %d\n", replicas),
	}
}

// initialFiles is the repository every environment branch starts from.
func initialFiles() map[string]string {
	files := map[string]string{
		"base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
		"base/deployment.yaml":    deployment("hello"),
		"apps/config.yaml":        "greeting: hello\n",
		"README.md":               "deploy repo\n",
	}
	for env, replicas := range map[string]int{"dev": 1, "staging": 2, "prod": 3} {
		for name, content := range overlay("1.0", replicas) {
			files["overlays/"+env+"/"+name] = content
		}
	}
	return files
}

func deployment(greeting string) string {
	return "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:0.9\n          env:\n            - name: GREETING\n              value: " + greeting + "\n"
}

// fixture is a repository on the real Gitea with env/dev, env/staging
// and env/prod, a working clone to push from, and the agent's own
// source.Repository that reports what an environment is synced at.
type fixture struct {
	t     *testing.T
	name  string
	dir   string
	agent *source.Repository
	clock *clock
	token string // token file
}

var repoName = regexp.MustCompile(`[^a-z0-9-]+`)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	name := strings.Trim(repoName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 85 {
		name = name[:85]
	}
	name = gitea.RepoName(name)
	f := &fixture{t: t, name: name, dir: t.TempDir(), clock: newClock()}
	if _, err := gitea.CreateRepo(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	f.token = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f.token, []byte(gitea.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.git("init", "-q", "-b", "env/dev")
	f.git("remote", "add", "origin", gitea.AuthenticatedURL(name))
	f.write(initialFiles())
	f.git("add", "-A")
	f.git("commit", "-q", "-m", "initial layout")
	f.git("branch", "env/staging")
	f.git("branch", "env/prod")
	f.git("push", "-q", "origin", "env/dev", "env/staging", "env/prod")
	for _, b := range []string{"env/dev", "env/staging", "env/prod"} {
		if err := gitea.WaitBranch(t.Context(), name, b, ""); err != nil {
			t.Fatal(err)
		}
	}
	f.agent = f.repository()
	return f
}

// repository opens a source.Repository of the fixture's repository with
// its own cache folder, following every branch the pipeline uses.
func (f *fixture) repository() *source.Repository {
	f.t.Helper()
	r, err := source.NewRepository(source.RepositorySettings{
		URL:      gitea.CloneURL(f.name),
		Branches: pipeline.Branches(),
		Auth:     source.AuthSettings{Username: gitea.User(), TokenFile: f.token},
		Timeout:  source.Duration{Duration: 30 * time.Second},
	}, source.Options{CacheDir: f.t.TempDir()})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = r.Close() })
	return r
}

// promoter builds a promoter with its own repository and the Gitea
// provider; edit adjusts the options.
func (f *fixture) promoter(edit func(*promote.Options)) *promote.Promoter {
	f.t.Helper()
	forge, err := giteaforge.New(giteaforge.Options{URL: gitea.URL(), Owner: gitea.User(), Repo: f.name, TokenFile: f.token})
	if err != nil {
		f.t.Fatal(err)
	}
	opts := promote.Options{Pipeline: pipeline, Repo: f.repository(), Forge: forge, Author: bot, Clock: f.clock,
		CompareURL: forge.CompareURL(), Logger: testLogger(f.t)}
	if edit != nil {
		edit(&opts)
	}
	p, err := promote.New(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) git(args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = f.dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dev Person", "GIT_AUTHOR_EMAIL=dev@example.invalid",
		"GIT_COMMITTER_NAME=Dev Person", "GIT_COMMITTER_EMAIL=dev@example.invalid", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *fixture) write(files map[string]string) {
	f.t.Helper()
	for name, content := range files {
		p := filepath.Join(f.dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				f.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
}

// checkout moves the working clone to the remote head of branch.
func (f *fixture) checkout(branch string) {
	f.t.Helper()
	f.git("fetch", "-q", "origin")
	f.git("checkout", "-q", "-B", branch, "origin/"+branch)
}

// commit writes files ("" deletes) on branch, pushes and waits until the
// forge has processed the push. It returns the commit.
func (f *fixture) commit(branch, message string, files map[string]string) string {
	f.t.Helper()
	f.checkout(branch)
	f.write(files)
	f.git("add", "-A")
	f.git("commit", "-q", "-m", message)
	return f.push(branch)
}

func (f *fixture) push(branch string) string {
	f.t.Helper()
	f.git("push", "-q", "origin", branch)
	head := f.git("rev-parse", "HEAD")
	if err := gitea.WaitBranch(f.t.Context(), f.name, branch, head); err != nil {
		f.t.Fatal(err)
	}
	return head
}

// synced polls the agent's repository and returns the revision an
// environment following branch would be synced at.
func (f *fixture) synced(branch string) *source.Revision {
	f.t.Helper()
	res, err := f.agent.Poll(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, b := range res.Branches {
		if b.Branch == branch && b.Revision != nil {
			return b.Revision
		}
	}
	f.t.Fatalf("no revision of %s", branch)
	return nil
}

// healthy is the state of an environment synced at branch's head and
// healthy since now.
func (f *fixture) healthy(branch string) promote.SourceState {
	now := f.clock.Now()
	return promote.SourceState{Revision: f.synced(branch), SyncedAt: now, Healthy: true, HealthySince: now}
}

// soaked is healthy with the default soak already over.
func (f *fixture) soaked(branch string) promote.SourceState {
	st := f.healthy(branch)
	st.SyncedAt = st.SyncedAt.Add(-promote.DefaultSoak)
	st.HealthySince = st.SyncedAt
	return st
}

// devChange is a change on env/dev: promotable files changed, added and
// removed, a new image tag in the dev overlay, and a dev-only change.
func devChange() map[string]string {
	files := map[string]string{
		"base/deployment.yaml": deployment("bonjour"),
		"apps/new.yaml":        "feature: on\n",
		"README.md":            "",
	}
	for name, content := range overlay("1.1", 5) {
		files["overlays/dev/"+name] = content
	}
	return files
}

// pull is a Gitea pull request as the tests read it.
type pull struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	Body   string `json:"body"`
	State  string `json:"state"`
	Merged bool   `json:"merged"`
	Head   struct {
		Ref string `json:"ref"`
		SHA string `json:"sha"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
	Mergeable      bool   `json:"mergeable"`
	MergeCommitSHA string `json:"merge_commit_sha"`
}

func (f *fixture) api(method, path string, in, out any) {
	f.t.Helper()
	if err := gitea.API(f.t.Context(), method, "/repos/"+gitea.User()+"/"+f.name+path, in, out); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) openPulls() []pull {
	f.t.Helper()
	var prs []pull
	f.api(http.MethodGet, "/pulls?state=open&limit=50", nil, &prs)
	sort.Slice(prs, func(i, j int) bool { return prs[i].Number < prs[j].Number })
	return prs
}

// files lists "status path" of a pull request's changed files.
func (f *fixture) pullFiles(number int) []string {
	f.t.Helper()
	var files []struct {
		Filename string `json:"filename"`
		Status   string `json:"status"`
	}
	f.api(http.MethodGet, fmt.Sprintf("/pulls/%d/files", number), nil, &files)
	var out []string
	for _, x := range files {
		out = append(out, x.Status+" "+x.Filename)
	}
	sort.Strings(out)
	return out
}

func (f *fixture) comments(number int) []string {
	f.t.Helper()
	var list []struct {
		Body string `json:"body"`
	}
	f.api(http.MethodGet, fmt.Sprintf("/issues/%d/comments", number), nil, &list)
	var out []string
	for _, c := range list {
		out = append(out, c.Body)
	}
	return out
}

// merge merges a pull request through the API once Gitea has checked it,
// and waits until the base branch has moved. It returns the merge commit.
func (f *fixture) merge(number int) string {
	f.t.Helper()
	return f.mergeWith(number, map[string]any{"Do": "merge"})
}

// mergeWith is merge with the API's merge options (the style in "Do",
// "MergeTitleField", ...).
func (f *fixture) mergeWith(number int, options map[string]any) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	defer cancel()
	var pr pull
	for {
		f.api(http.MethodGet, fmt.Sprintf("/pulls/%d", number), nil, &pr)
		if pr.Mergeable {
			break
		}
		select {
		case <-ctx.Done():
			f.t.Fatalf("pull request #%d never became mergeable", number)
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.api(http.MethodPost, fmt.Sprintf("/pulls/%d/merge", number), options, nil)
	f.api(http.MethodGet, fmt.Sprintf("/pulls/%d", number), nil, &pr)
	if !pr.Merged || pr.MergeCommitSHA == "" {
		f.t.Fatalf("pull request #%d not merged: %+v", number, pr)
	}
	if err := gitea.WaitBranch(f.t.Context(), f.name, pr.Base.Ref, pr.MergeCommitSHA); err != nil {
		f.t.Fatal(err)
	}
	return pr.MergeCommitSHA
}

// branchHead returns a remote branch's head, or "" if it does not exist.
func (f *fixture) branchHead(branch string) string {
	f.t.Helper()
	out, err := exec.Command("git", "ls-remote", gitea.AuthenticatedURL(f.name), "refs/heads/"+branch).CombinedOutput()
	if err != nil {
		f.t.Fatalf("ls-remote: %v\n%s", err, out)
	}
	if fields := strings.Fields(string(out)); len(fields) > 0 {
		return fields[0]
	}
	return ""
}

// show returns a file at a remote commit.
func (f *fixture) show(commit, path string) string {
	f.t.Helper()
	f.git("fetch", "-q", "origin")
	return f.git("show", commit+":"+path)
}

// log runs git log in the working clone after fetching every branch, so
// that commits Baton or the forge made are there.
func (f *fixture) log(args ...string) string {
	f.t.Helper()
	f.git("fetch", "-q", "origin")
	return f.git(append([]string{"log"}, args...)...)
}

func mustEvaluate(t *testing.T, p *promote.Promoter, e promote.Edge, st promote.SourceState) promote.Outcome {
	t.Helper()
	out, err := p.Evaluate(t.Context(), e, st)
	if err != nil {
		t.Fatalf("evaluate %s: %v", e.Name(), err)
	}
	return out
}

func wantResult(t *testing.T, out promote.Outcome, want promote.Result) {
	t.Helper()
	if out.Result != want {
		t.Fatalf("result %s, want %s (blocker %+v, gates %v)", out.Result, want, out.Blocker, out.Gates)
	}
}

func eventKinds(out promote.Outcome) []promote.EventKind {
	var k []promote.EventKind
	for _, e := range out.Events {
		k = append(k, e.Kind)
	}
	return k
}

var devToStaging = promote.Edge{From: "dev", To: "staging"}
var stagingToProd = promote.Edge{From: "staging", To: "prod"}

func execGit(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), execGitEnv()...)
	return cmd
}

func writeFile(dir, name, content string) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

func execGitEnv() []string {
	return []string{"GIT_AUTHOR_NAME=Ops Person", "GIT_AUTHOR_EMAIL=ops@example.invalid",
		"GIT_COMMITTER_NAME=Ops Person", "GIT_COMMITTER_EMAIL=ops@example.invalid", "GIT_TERMINAL_PROMPT=0"}
}
