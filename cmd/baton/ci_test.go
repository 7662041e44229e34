package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// checkout clones the world's repository at branch into a working tree.
func (w *world) checkout(branch string) string {
	w.t.Helper()
	dir := filepath.Join(w.t.TempDir(), "deploy")
	gitserver.RunGit(w.t, filepath.Dir(dir), nil, "clone", "-q", "-b", branch, w.repo.Path, dir)
	return dir
}

// write changes a file of a working tree.
func write(t *testing.T, dir, file, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(file)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644))
}

// render --path renders the working tree, uncommitted changes included,
// and equals the agent's render of the same tree once it is committed.
func TestRenderPathEqualsTheCommittedRender(t *testing.T) {
	w := newWorld(t)
	dir := w.checkout("env/dev")
	write(t, dir, "base/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: purple\n")
	write(t, dir, "base/notes.yaml", "# ignored by git: never rendered\n")
	write(t, dir, ".gitignore", "notes.yaml\n")

	code, fromTree, errOut := w.baton("render", "--path", dir, "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, fromTree, "color: purple")
	// The overlay folder itself, from inside the working tree.
	code, fromFolder, errOut := w.baton("render", "--path", filepath.Join(dir, "overlays", "dev"))
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fromTree, fromFolder)

	gitserver.RunGit(t, dir, []string{"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com"},
		"commit", "-qam", "purple")
	gitserver.RunGit(t, dir, nil, "push", "-q", "origin", "env/dev")
	code, fromGit, errOut := w.baton("render", "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, fromGit, fromTree, "render --path differs from the render of the committed tree")

	// The same refusals as the agent's: a symbolic link out of the tree
	// does not resolve, as in a commit's snapshot.
	require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "base", "web.yaml.tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "base", "web.yaml.tmp"), filepath.Join(dir, "base", "web.yaml")))
	code, _, errOut = w.baton("render", "--path", dir, "--env", "dev")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `resources entry "web.yaml": base/web.yaml does not exist in the snapshot`)
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
}

// diff --path previews the working tree against the cluster: exit 1 and
// the change, before anything is committed.
func TestDiffPath(t *testing.T) {
	w := newWorld(t)
	w.apply()
	dir := w.checkout("env/dev")
	code, out, errOut := w.baton("diff", "--path", dir, "--env", "dev")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "no differences (3 unchanged)\n", out)
	write(t, dir, "base/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n")
	code, out, errOut = w.baton("diff", "--path", dir, "--env", "dev", "--color", "always")
	require.Equal(t, 1, code, errOut)
	golden(t, "diff-change.golden", w.normalizer().apply(out))
	code, _, errOut = w.baton("diff", "--path", dir, "--env", "dev", "--revision", "x")
	require.Equal(t, 2, code)
	require.Equal(t, "baton diff: --revision and --path exclude each other: --path diffs the files on disk\n", errOut)
}

// validate lists every problem, naming the file and the field: a schema
// error found by the API server's dry run, and a render error.
func TestValidate(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("  - name: staging\n    branch: env/staging\n    path: overlays/staging\n    namespace: "+w.appNS+"\n", "")
	dir := w.checkout("env/dev")

	code, out, errOut := w.baton("validate", "--path", dir)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "dev: 3 objects, rendered and checked against the cluster's schema\n")

	write(t, dir, "base/deploy.yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: "three"
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1.0}]
`)
	write(t, dir, "base/kustomization.yaml", "resources:\n  - settings.yaml\n  - web.yaml\n  - deploy.yaml\n")
	write(t, dir, "overlays/staging/kustomization.yaml", "resources:\n  - ../../base\n  - missing.yaml\n")
	n := w.normalizer()
	n.add(regexpQuote(dir), "WORKTREE", false)
	n.add(regexpQuote(w.config), "CONFIG", false)
	code, out, errOut = w.baton("validate", "--path", dir)
	require.Equal(t, 1, code, errOut)
	golden(t, "validate.golden", n.apply(out))
	require.Equal(t, "baton validate: 2 problems found\n", errOut)
	require.Contains(t, out, "problem: dev: base/deploy.yaml: Deployment/"+w.appNS+"/web: spec.replicas: ")

	code, out, errOut = w.baton("validate", "--path", dir, "--offline", "--env", "dev", "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"cluster": "not checked (--offline)"`)
}

func regexpQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, ".", `\.`, "+", `\+`, "(", `\(`, ")", `\)`).Replace(s)
}

// Completion scripts for the shells people use, from cobra.
func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{"bash": "__start_baton", "zsh": "#compdef baton", "fish": "complete -c baton"} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), []string{"completion", shell}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
		require.Contains(t, stdout.String(), marker, shell)
	}
	// Dynamic completion: environments from the configuration, flags.
	var stdout, stderr strings.Builder
	code := run(context.Background(), []string{"__complete", "suspend", "--config", "../../internal/config/testdata/baton.yaml", "--env", ""}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, "dev\nstaging\nprod\nbilling-dev\nbilling-prod\n:4\n", stdout.String())
	stdout.Reset()
	code = run(context.Background(), []string{"__complete", "status", "-o", ""}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Equal(t, "table\njson\nyaml\n:4\n", stdout.String())
}
