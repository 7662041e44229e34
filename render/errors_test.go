package render

import (
	"context"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestPreciseErrors: each broken input fails with no objects and an error
// that names the file (and line and entry where there is one).
func TestPreciseErrors(t *testing.T) {
	r := newTestRenderer(t, Options{})
	for _, tc := range []struct {
		name  string
		files map[string]string
		path  string
		want  []string
	}{
		{
			name: "yaml syntax error in a resource, second document",
			files: withBase(map[string]string{
				"base/deployment.yaml": baseDeployment + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [app\n",
			}),
			path: "base",
			// Line 16 of the file; Kustomize itself reports line 5 of the document.
			want: []string{"base/deployment.yaml:16: yaml syntax error"},
		},
		{
			name: "yaml syntax error in a kustomization",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\nnamePrefix: [dev-\n",
			}),
			path: "overlays/x",
			want: []string{"overlays/x/kustomization.yaml:3: yaml syntax error"},
		},
		{
			name: "unknown kustomization field",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\nnameprefx: dev-\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:3: unknown field "nameprefx": not a kustomization field`},
		},
		{
			name: "kustomization field of the wrong type",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\nreplicas:\n  name: web\n  count: 2\n",
			}),
			path: "overlays/x",
			want: []string{"overlays/x/kustomization.yaml:3: field replicas: cannot use object as []types.Replica"},
		},
		{
			name: "missing resource file",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\n  - extra.yaml\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:3: resources entry "extra.yaml": overlays/x/extra.yaml does not exist in the snapshot`},
		},
		{
			name: "missing base folder",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../bsae\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:2: resources entry "../../bsae": bsae does not exist in the snapshot`},
		},
		{
			name: "base folder without kustomization",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../raw\n",
				"raw/cm.yaml":                   "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:2: resources entry "../../raw": folder raw has no kustomization.yaml`},
		},
		{
			name: "file outside the kustomization's folder",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base/deployment.yaml\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:2: resources entry "../../base/deployment.yaml": file base/deployment.yaml is outside overlays/x`},
		},
		{
			name: "missing patch file",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\npatches:\n  - path: replicas.yaml\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:4: patches entry "replicas.yaml": overlays/x/replicas.yaml does not exist in the snapshot`},
		},
		{
			name: "strategic merge patch whose target is not found",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\npatches:\n  - path: api.yaml\n",
				"overlays/x/api.yaml":           "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:4: patches entry "api.yaml": patch target Deployment/api not found`},
		},
		{
			name: "legacy patchesStrategicMerge whose target is not found",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\npatchesStrategicMerge:\n  - api.yaml\n",
				"overlays/x/api.yaml":           "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 2\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:4: patchesStrategicMerge entry "api.yaml": patch target Deployment/api not found`},
		},
		{
			name: "json 6902 patch on a missing path",
			files: withBase(map[string]string{
				"overlays/x/kustomization.yaml": "resources:\n  - ../../base\npatches:\n  - target:\n      kind: Deployment\n      name: web\n    path: ops.yaml\n",
				"overlays/x/ops.yaml":           "- op: replace\n  path: /spec/strategy/rollingUpdate/maxSurge\n  value: 2\n",
			}),
			path: "overlays/x",
			want: []string{`overlays/x/kustomization.yaml:4: patches entry "ops.yaml": json patch operation on /spec/strategy/rollingUpdate/maxSurge failed`},
		},
		{
			name: "duplicate objects in one kustomization",
			files: withBase(map[string]string{
				"base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - copy.yaml\n",
				"base/copy.yaml":          "# same object again\n" + baseDeployment,
			}),
			path: "base",
			want: []string{"duplicate object Deployment/web: defined in base/deployment.yaml:1 and base/copy.yaml:2"},
		},
		{
			name: "duplicate objects across versions",
			files: map[string]string{
				"app/kustomization.yaml": "resources:\n  - v1.yaml\n  - v2.yaml\n",
				"app/v1.yaml":            "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n",
				"app/v2.yaml":            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\n",
			},
			path: "app",
			want: []string{"duplicate object HorizontalPodAutoscaler/web: rendered from app/v1.yaml:1 (autoscaling/v1) and from app/v2.yaml:1 (autoscaling/v2)"},
		},
		{
			name: "duplicate objects in a plain folder",
			files: map[string]string{
				"plain/a.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: tools\n",
				"plain/sub/b.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: tools\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: tools\n",
			},
			path: "plain",
			want: []string{"duplicate object ConfigMap/tools/settings: defined in plain/a.yaml:1 and plain/sub/b.yaml:6"},
		},
		{
			name: "object without metadata.name",
			files: withBase(map[string]string{
				"base/kustomization.yaml": "resources:\n  - deployment.yaml\n  - cm.yaml\n",
				"base/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    a: b\n",
			}),
			path: "base",
			want: []string{"base/cm.yaml:1: object ConfigMap/<no name> has no metadata.name"},
		},
		{
			name: "object without kind",
			files: map[string]string{
				"plain/cm.yaml": "apiVersion: v1\nmetadata:\n  name: settings\n",
			},
			path: "plain",
			want: []string{"plain/cm.yaml:1: object <no kind>/settings has no kind"},
		},
		{
			name: "object without apiVersion",
			files: map[string]string{
				"plain/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\n",
				"plain/cm.yaml": "kind: ConfigMap\nmetadata:\n  name: settings\n",
			},
			path: "plain",
			want: []string{"plain/cm.yaml:1: object ConfigMap/settings has no apiVersion"},
		},
		{
			name:  "plain folder without manifests",
			files: map[string]string{"docs/README.md": "# nothing to apply\n"},
			path:  "docs",
			want:  []string{"folder docs has no kustomization.yaml and no *.yaml, *.yml or *.json manifests"},
		},
		{
			name:  "folder that does not exist",
			files: withBase(nil),
			path:  "overlays/nope",
			want:  []string{"render overlays/nope: folder overlays/nope:", "not exist"},
		},
		{
			name:  "path to a file",
			files: withBase(nil),
			path:  "base/deployment.yaml",
			want:  []string{"base/deployment.yaml is a file, not a folder"},
		},
		{
			name: "two kustomization files",
			files: withBase(map[string]string{
				"base/kustomization.yml": "resources:\n  - deployment.yaml\n",
			}),
			path: "base",
			want: []string{"folder base has more than one kustomization file: kustomization.yaml, kustomization.yml"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := renderFails(t, r, tc.files, tc.path)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// TestYAMLErrorLines: lines are counted from the top of the file, across
// documents, for go-yaml's scanner and parser errors alike.
func TestYAMLErrorLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a: 1\nb: [x\n", "f.yaml:2: yaml syntax error: did not find expected ',' or ']'"},
		{"a: 1\n  b: 2\n", "f.yaml:2: yaml syntax error: mapping values are not allowed in this context"},
		{"a: 1\n\tb: 2\n", "f.yaml:2: yaml syntax error: found a tab character that violates indentation"},
		{"kind: A\n---\nkind: B\n---\nkind: C\nmetadata: {name: [x}\n", "f.yaml:6: yaml syntax error"},
		{"a: \"x\n", "f.yaml:2: yaml syntax error: found unexpected end of stream"},
	} {
		_, err := manifestDocs("f.yaml", []byte(tc.in))
		if assert.Error(t, err, tc.in) {
			assert.Contains(t, err.Error(), tc.want, tc.in)
		}
	}
}

// panickyFS panics when read, standing in for a bug deep in a build.
type panickyFS struct{}

func (panickyFS) Open(string) (fs.File, error) { panic("boom") }

// TestRenderRecoversPanics: a panic during a build becomes an error; it must
// not take the process down from singleflight's goroutine.
func TestRenderRecoversPanics(t *testing.T) {
	r := newTestRenderer(t, Options{})
	_, err := r.Render(context.Background(), &fixedHashSnapshot{panickyFS{}}, "app")
	assert.ErrorContains(t, err, "render app: panic while rendering (a bug in kustomize or baton): boom")
}

// fixedHashSnapshot has a constant TreeHash, for trees that cannot be read.
type fixedHashSnapshot struct{ fs.FS }

func (fixedHashSnapshot) TreeHash(string) (string, error) { return "0000", nil }
