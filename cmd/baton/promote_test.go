package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/promote"
)

// Computed from the cluster, dev's soak cannot be known to have passed
// (TestPromote): --override-gates promotes anyway and says so in the
// commit.
func TestPromoteOverrideGates(t *testing.T) {
	w := newWorld(t)
	w.writeConfig("  - name: staging\n    branch: env/staging\n    path: overlays/staging\n    namespace: "+w.appNS+"\n",
		"pipeline:\n  order: [dev, staging]\n  edges: [{from: dev, to: staging, policy: auto}]\n  author: {name: CI Bot, email: ci@example.com}\n")
	green := w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
		"base/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: green\n"}})
	w.apply()
	before := w.repo.Head(t, "env/staging")
	t.Setenv("BATON_USER", "Ada <ada@example.com>")

	code, _, errOut := w.baton("promote", "--from", "dev", "--to", "staging", "--override-gates")
	require.Equal(t, 2, code)
	require.Equal(t, "baton promote: --override-gates needs --reason \"why\": the reason is recorded in the promotion commit\n", errOut)
	code, _, errOut = w.baton("promote", "--from", "dev", "--to", "staging", "--reason", "hotfix")
	require.Equal(t, 2, code)
	require.Equal(t, "baton promote: --reason is only for --override-gates\n", errOut)
	require.Equal(t, before, w.repo.Head(t, "env/staging"), "a refused command changed env/staging")

	code, out, errOut := w.baton("promote", "--from", "dev", "--to", "staging", "--override-gates", "--reason", "hotfix for INC-42")
	require.Equal(t, 0, code, errOut)
	promoted := w.repo.Head(t, "env/staging")
	require.NotEqual(t, before, promoted)
	require.Equal(t, "dev -> staging "+green[:12]+": pushed "+promoted[:12]+"\n", out)
	require.Contains(t, w.gitShow("env/staging", "base/settings.yaml"), "color: green")
	trailer := gitserver.RunGit(t, w.repo.Path, nil, "log", "-1",
		"--format=%(trailers:key="+promote.TrailerGatesOverridden+",valueonly)", promoted)
	require.Equal(t, "Ada <ada@example.com>: hotfix for INC-42", trailer)
}
