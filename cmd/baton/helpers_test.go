package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// env is the package's control plane (diff and status need a cluster).
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

var update = flag.Bool("update", false, "rewrite the golden files")

// world is a CLI test's git server, repository, namespaces and
// configuration file.
type world struct {
	t       *testing.T
	srv     *gitserver.Server
	repo    *gitserver.Repo
	appNS   string
	agentNS string
	config  string // path of baton.yaml
}

// baseFiles is the repository the CLI tests start from: a base with two
// ConfigMaps and a dev overlay that pins an image.
func baseFiles() map[string]string {
	return map[string]string{
		"base/kustomization.yaml": "resources:\n  - settings.yaml\n  - web.yaml\n",
		"base/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: blue\n",
		"base/web.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  image: registry.example/app
`,
		"overlays/staging/kustomization.yaml": "resources:\n  - ../../base\n",
		"overlays/dev/kustomization.yaml": `# The dev overlay.
resources:
  - ../../base
images:
  - name: app
    newName: registry.example/app
    newTag: "1.0.0"
configMapGenerator:
  - name: env
    literals: [ENVIRONMENT=dev]
generatorOptions:
  disableNameSuffixHash: true
`,
	}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, srv: gitserver.Start(t, gitserver.Options{}), appNS: env.Namespace(t), agentNS: env.Namespace(t)}
	w.repo = w.srv.CreateRepo(t, "deploy", baseFiles())
	w.writeConfig("", "")
	return w
}

// writeConfig writes baton.yaml with the dev environment, plus extraEnvs
// (more list items under environments:) and extraTop (more top-level
// keys, replacing the default pipeline: author).
func (w *world) writeConfig(extraEnvs, extraTop string) {
	w.t.Helper()
	dir := w.t.TempDir()
	token := filepath.Join(dir, "token")
	require.NoError(w.t, os.WriteFile(token, []byte(w.srv.Token+"\n"), 0o600))
	w.config = filepath.Join(dir, "baton.yaml")
	if extraTop == "" {
		extraTop = "pipeline:\n  author: {name: CI Bot, email: ci@example.com}\n"
	}
	cfg := fmt.Sprintf(`repositories:
  - name: deploy
    url: %s
    auth: {username: %s, tokenFile: %s}
    timeout: 30s
environments:
  - name: dev
    branch: env/dev
    path: overlays/dev
    namespace: %s
    health: {soak: 1s}
%ssync: [dev]
%sagent:
  namespace: %s
  cacheDir: %s
`, w.srv.HTTPURL("deploy"), w.srv.User, token, w.appNS, extraEnvs, extraTop, w.agentNS, filepath.Join(dir, "cache"))
	require.NoError(w.t, os.WriteFile(w.config, []byte(cfg), 0o600))
}

// baton runs the CLI in process with the world's configuration and
// kubeconfig and returns its exit code, stdout and stderr.
func (w *world) baton(args ...string) (int, string, string) {
	w.t.Helper()
	var stdout, stderr bytes.Buffer
	full := append([]string{args[0], "--config", w.config, "--kubeconfig", env.KubeconfigPath()}, args[1:]...)
	code := run(context.Background(), full, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// normalizer replaces what changes from run to run (commit hashes, times,
// namespaces, ports) with stable placeholders, numbering distinct values
// in order of appearance.
type normalizer struct {
	rules []rule
}

type rule struct {
	re     *regexp.Regexp
	prefix string
	// numbered tells distinct values apart (<COMMIT-1>, <COMMIT-2>) where
	// their identity matters; times and durations are all alike.
	numbered bool
	seen     map[string]string
}

func (w *world) normalizer() *normalizer {
	n := &normalizer{}
	n.add(regexp.QuoteMeta(w.appNS), "NAMESPACE", false)
	n.add(regexp.QuoteMeta(w.agentNS), "AGENT-NAMESPACE", false)
	n.add(regexp.QuoteMeta(w.srv.HTTPURL("deploy")), "REPO-URL", false)
	n.add(`http://127\.0\.0\.1:\d+`, "AGENT-URL", false)
	n.add(`\b[0-9a-f]{40}\b`, "COMMIT", true)
	n.add(`\b[0-9a-f]{12}\b`, "SHORT", true)
	n.add(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`, "TIME", false)
	n.add(`\b\d+(\.\d+)?(ns|µs|ms|s|m0s)\b`, "DURATION", false)
	return n
}

func (n *normalizer) add(expr, prefix string, numbered bool) {
	n.rules = append(n.rules, rule{re: regexp.MustCompile(expr), prefix: prefix, numbered: numbered, seen: map[string]string{}})
}

func (n *normalizer) apply(s string) string {
	for _, r := range n.rules {
		s = r.re.ReplaceAllStringFunc(s, func(m string) string {
			if v, ok := r.seen[m]; ok {
				return v
			}
			v := fmt.Sprintf("<%s-%d>", r.prefix, len(r.seen)+1)
			if !r.numbered {
				v = "<" + r.prefix + ">"
			}
			r.seen[m] = v
			return v
		})
	}
	return s
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "golden file missing: run the test with -update")
	require.Equal(t, string(want), got, "output differs from %s (run with -update after checking)", path)
}

// gitShow reads a file of a branch in the bare repository.
func (w *world) gitShow(branch, file string) string {
	w.t.Helper()
	return gitserver.RunGit(w.t, w.repo.Path, nil, "show", branch+":"+file) + "\n"
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader on other
// goroutines (the agent logs while the test reads).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// envConfig is the control plane's admin client configuration.
func envConfig() *rest.Config { return env.Config() }

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, within, true,
		func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, "waiting %s for %s", within, what)
}
