package render

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const baseDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0.0
`

// withBase adds a small base to a test tree.
func withBase(files map[string]string) map[string]string {
	out := map[string]string{
		"base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
		"base/deployment.yaml":    baseDeployment,
	}
	for k, v := range files {
		out[k] = v
	}
	return out
}

// renderFails renders path and asserts a failure with no objects.
func renderFails(t *testing.T, r *Renderer, files map[string]string, path string) error {
	t.Helper()
	res, err := r.Render(context.Background(), mapSnapshot(files), path)
	require.Error(t, err)
	assert.Nil(t, res.Objects, "a failed render returns no objects")
	assert.Empty(t, res.Digest)
	return err
}

func TestRefusals(t *testing.T) {
	r := newTestRenderer(t, Options{})
	for _, tc := range []struct {
		name  string
		kust  string            // overlays/x/kustomization.yaml
		extra map[string]string // more files
		is    error
		msg   []string // substrings of the error
	}{
		{
			name: "git resource over https",
			kust: "resources:\n  - ../../base\n  - https://github.com/acme/infra//base?ref=v1.2.0\n",
			is:   ErrRemoteRefused,
			msg:  []string{"overlays/x/kustomization.yaml:3: resources entry", "not under an allowed prefix"},
		},
		{
			name: "schemeless github resource",
			kust: "resources:\n  - github.com/acme/infra/base\n",
			is:   ErrRemoteRefused,
			msg:  []string{"overlays/x/kustomization.yaml:2: resources entry \"github.com/acme/infra/base\""},
		},
		{
			name: "scp-like git resource",
			kust: "resources:\n  - git@github.com:acme/infra.git/base\n",
			is:   ErrRemoteRefused,
			msg:  []string{"git@github.com:acme/infra.git/base"},
		},
		{
			name: "legacy bases entry",
			kust: "bases:\n  - git::https://example.com/acme/infra.git//base\n",
			is:   ErrRemoteRefused,
			msg:  []string{"bases entry", "git::https://example.com/acme/infra.git//base"},
		},
		{
			name: "remote component",
			kust: "resources:\n  - ../../base\ncomponents:\n  - https://github.com/acme/components//debug\n",
			is:   ErrRemoteRefused,
			msg:  []string{"overlays/x/kustomization.yaml:4: components entry", "https://github.com/acme/components//debug"},
		},
		{
			name: "remote generator file",
			kust: "configMapGenerator:\n  - name: c\n    files:\n      - app.properties=https://example.com/app.properties\n",
			is:   ErrRemoteRefused,
			msg:  []string{"configMapGenerator entry", "https://example.com/app.properties"},
		},
		{
			name: "remote patch file",
			kust: "resources:\n  - ../../base\npatches:\n  - path: https://example.com/patch.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"patches entry", "https://example.com/patch.yaml"},
		},
		{
			name: "remote patchesStrategicMerge entry",
			kust: "resources:\n  - ../../base\npatchesStrategicMerge:\n  - https://example.com/patch.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"overlays/x/kustomization.yaml:4: patchesStrategicMerge entry \"https://example.com/patch.yaml\""},
		},
		{
			name: "remote crds",
			kust: "crds:\n  - https://example.com/crd.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"crds entry \"https://example.com/crd.yaml\""},
		},
		{
			name: "remote configurations",
			kust: "configurations:\n  - https://example.com/config.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"configurations entry"},
		},
		{
			name: "remote replacements",
			kust: "replacements:\n  - path: https://example.com/replacements.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"replacements entry"},
		},
		{
			name: "remote generator configuration",
			kust: "generators:\n  - https://example.com/generators.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"generators entry"},
		},
		{
			name: "remote file in a builtin generator",
			kust: "generators:\n  - |\n    apiVersion: builtin\n    kind: ConfigMapGenerator\n    metadata:\n      name: c\n    files:\n      - app.properties=https://example.com/app.properties\n",
			is:   ErrRemoteRefused,
			msg:  []string{"generators (inline): builtin ConfigMapGenerator/c", "https://example.com/app.properties"},
		},
		{
			name: "remote path inside a builtin transformer",
			kust: "resources:\n  - ../../base\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata:\n      name: p\n    path: https://example.com/patch.yaml\n",
			is:   ErrRemoteRefused,
			msg:  []string{"transformers (inline)", "PatchTransformer", "https://example.com/patch.yaml"},
		},
		{
			name: "exec KRM function",
			kust: "resources:\n  - ../../base\ntransformers:\n  - fn.yaml\n",
			extra: map[string]string{"overlays/x/fn.yaml": `apiVersion: acme.dev/v1
kind: Stamp
metadata:
  name: stamp
  annotations:
    config.kubernetes.io/function: |
      exec:
        path: ./stamp.sh
`},
			is:  ErrPluginRefused,
			msg: []string{"overlays/x/kustomization.yaml:4: transformers entry \"fn.yaml\"", "acme.dev/v1 Stamp/stamp declares a KRM function (runtime: exec)"},
		},
		{
			name: "container KRM function",
			kust: "generators:\n  - fn.yaml\n",
			extra: map[string]string{"overlays/x/fn.yaml": `apiVersion: acme.dev/v1
kind: Render
metadata:
  name: gen
  annotations:
    config.kubernetes.io/function: |
      container:
        image: ghcr.io/acme/render-fn:1
`},
			is:  ErrPluginRefused,
			msg: []string{"generators entry \"fn.yaml\"", "(runtime: container)"},
		},
		{
			name: "external exec plugin",
			kust: "resources:\n  - ../../base\ntransformers:\n  - |\n    apiVersion: acme.dev/v1\n    kind: SopsDecrypt\n    metadata:\n      name: sops\n",
			is:   ErrPluginRefused,
			msg:  []string{"acme.dev/v1 SopsDecrypt/sops is not a kustomize builtin"},
		},
		{
			name: "validator from a plugin folder",
			kust: "resources:\n  - ../../base\nvalidators:\n  - ../../plugins\n",
			extra: map[string]string{
				"plugins/kustomization.yaml": "resources:\n  - check.yaml\n",
				"plugins/check.yaml":         "apiVersion: acme.dev/v1\nkind: Policy\nmetadata:\n  name: p\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: /bin/sh\n",
			},
			is:  ErrPluginRefused,
			msg: []string{"plugins/kustomization.yaml:2: resources entry \"check.yaml\"", "(runtime: exec)"},
		},
		{
			name: "helmCharts",
			kust: "resources:\n  - ../../base\nhelmCharts:\n  - name: redis\n    repo: https://charts.bitnami.com/bitnami\n    version: 18.0.0\n",
			is:   ErrHelmRefused,
			msg:  []string{"overlays/x/kustomization.yaml:3: helmCharts", "no helm binary"},
		},
		{
			name: "legacy helmChartInflationGenerator field",
			kust: "helmChartInflationGenerator:\n  - chartName: redis\n",
			is:   ErrHelmRefused,
			msg:  []string{"helmChartInflationGenerator"},
		},
		{
			name: "helm generator plugin",
			kust: "generators:\n  - |\n    apiVersion: builtin\n    kind: HelmChartInflationGenerator\n    metadata:\n      name: redis\n    chartName: redis\n",
			is:   ErrHelmRefused,
		},
		{
			name: "openapi schema",
			kust: "resources:\n  - ../../base\nopenapi:\n  path: schema.json\n",
			is:   ErrOpenAPIRefused,
			msg:  []string{"overlays/x/kustomization.yaml:3: openapi"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := withBase(tc.extra)
			files["overlays/x/kustomization.yaml"] = tc.kust
			err := renderFails(t, r, files, "overlays/x")
			assert.ErrorIs(t, err, tc.is)
			for _, m := range tc.msg {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestAllowedRemotePrefixes(t *testing.T) {
	r := newTestRenderer(t, Options{AllowedRemotePrefixes: []string{"https://github.com/acme/"}})
	for _, tc := range []struct {
		url string
		is  error
	}{
		// Allowed: the check passes; fetching is not done in process.
		{"https://github.com/acme/infra//base?ref=v1", ErrRemoteUnsupported},
		{"https://github.com/acme-evil/infra//base", ErrRemoteRefused},
		{"https://github.com/acme/../evil/infra//base", ErrRemoteRefused},
		{"https://gitlab.com/acme/infra//base", ErrRemoteRefused},
		{"git@github.com:acme/infra.git", ErrRemoteRefused},
	} {
		t.Run(tc.url, func(t *testing.T) {
			files := withBase(map[string]string{"overlays/x/kustomization.yaml": "resources:\n  - " + tc.url + "\n"})
			err := renderFails(t, r, files, "overlays/x")
			assert.ErrorIs(t, err, tc.is)
			assert.Contains(t, err.Error(), tc.url)
			if errors.Is(err, ErrRemoteUnsupported) {
				assert.Contains(t, err.Error(), "vendor it into the repository")
			}
		})
	}

	_, err := New(Options{AllowedRemotePrefixes: []string{"acme/"}})
	assert.ErrorContains(t, err, `allowed remote prefix "acme/" is not a remote URL`)
}

func TestPathEscapeRefused(t *testing.T) {
	r := newTestRenderer(t, Options{})
	files := withBase(map[string]string{
		"overlays/prod/kustomization.yaml": "resources:\n  - ../../base\n",
	})

	for _, p := range []string{"../../../etc", "overlays/../../etc", "/etc", "/overlays/prod"} {
		err := renderFails(t, r, files, p)
		assert.ErrorIs(t, err, ErrPathEscape, p)
		assert.Contains(t, err.Error(), p)
	}

	for _, tc := range []struct{ entry, msg string }{
		{"../../../etc", `overlays/prod/kustomization.yaml:3: resources entry "../../../etc": path escapes the snapshot root`},
		{"/etc/passwd", `overlays/prod/kustomization.yaml:3: resources entry "/etc/passwd": path escapes the snapshot root: absolute paths are refused`},
	} {
		files["overlays/prod/kustomization.yaml"] = "resources:\n  - ../../base\n  - " + tc.entry + "\n"
		err := renderFails(t, r, files, "overlays/prod")
		assert.ErrorIs(t, err, ErrPathEscape)
		assert.ErrorContains(t, err, tc.msg)
	}
}

// TestSnapshotFilesystemIsRooted checks the adapter itself, below the scan:
// Kustomize cannot leave the snapshot or write to it whatever it asks.
func TestSnapshotFilesystemIsRooted(t *testing.T) {
	fsys := newSnapshotFS(mapSnapshot(map[string]string{"a/b.yaml": "x: 1\n"}).FS, nil)

	for _, p := range []string{"/../../etc/passwd", "../a/b.yaml", "/a/../../etc"} {
		_, err := fsys.ReadFile(p)
		assert.ErrorIs(t, err, ErrPathEscape, p)
		assert.False(t, fsys.Exists(p), p)
	}
	_, err := fsys.ReadFile("/etc/passwd")
	assert.Error(t, err, "absolute paths are inside the snapshot, where /etc does not exist")

	data, err := fsys.ReadFile("/a/b.yaml")
	require.NoError(t, err)
	assert.Equal(t, "x: 1\n", string(data))
	dir, file, err := fsys.CleanedAbs("/a/./b.yaml")
	require.NoError(t, err)
	assert.Equal(t, "/a", dir.String())
	assert.Equal(t, "b.yaml", file)

	assert.ErrorIs(t, fsys.WriteFile("/a/c.yaml", nil), errReadOnly)
	assert.ErrorIs(t, fsys.MkdirAll("/d"), errReadOnly)
	assert.ErrorIs(t, fsys.RemoveAll("/a"), errReadOnly)
	_, err = fsys.Create("/a/c.yaml")
	assert.ErrorIs(t, err, errReadOnly)
	f, err := fsys.Open("/a/b.yaml")
	require.NoError(t, err)
	_, err = f.Write([]byte("y"))
	assert.ErrorIs(t, err, errReadOnly)
	require.NoError(t, f.Close())
}

func TestRemoteDetection(t *testing.T) {
	for ref, want := range map[string]bool{
		"https://github.com/acme/infra":   true,
		"HTTP://example.com/x.yaml":       true,
		"ssh://git@example.com/acme/repo": true,
		"file:///srv/repo":                true,
		"git::https://example.com/r.git":  true,
		"git@github.com:acme/infra.git":   true,
		"github.com/acme/infra/base":      true,
		"GitHub.com:acme/infra":           true,
		"../../base":                      false,
		"deployment.yaml":                 false,
		"configs/github.com.yaml":         false,
		"app.properties":                  false,
	} {
		assert.Equal(t, want, isRemote(ref), ref)
	}
}
