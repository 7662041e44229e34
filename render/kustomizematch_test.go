package render

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKustomizeMatchesCLI builds kustomizations with the kustomize/api this
// module links (the patched copy in third_party/kustomize-api) and with the
// kustomize CLI built from the same, unpatched, upstream version, and
// requires the same bytes out, or the same error message. The trees are
// Baton's own (fixtures, demo sample, install manifests), the render
// benchmark's, real-world ones from the Go module cache (kwok's install and
// stages, Kubernetes' and cli-runtime's test data) and small ones aimed at
// the patched code: duplicate ids, namespace conflicts, YAML aliases,
// name-reference configurations that touch metadata, cross-namespace RBAC,
// deletions by patch.
func TestKustomizeMatchesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kustomize CLI on first use")
	}
	bin := ensureKustomizeCLI(t)
	for _, tree := range matchTrees(t) {
		t.Run(tree.name, func(t *testing.T) {
			t.Parallel()
			assertSameBuild(t, bin, tree)
		})
	}
}

func matchTrees(t *testing.T) []kustomizeTree {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	fixtures, repo := abs(filepath.Join("testdata", "repo")), abs("..")
	trees := []kustomizeTree{
		{"fixtures/base", fixtures, "base"},
		{"fixtures/dev", fixtures, "overlays/dev"},
		{"fixtures/staging", fixtures, "overlays/staging"},
		{"fixtures/prod", fixtures, "overlays/prod"},
		{"demo/base", repo, "internal/demo/sample/base"},
		{"demo/dev", repo, "internal/demo/sample/overlays/dev"},
		{"demo/staging", repo, "internal/demo/sample/overlays/staging"},
		{"demo/prod", repo, "internal/demo/sample/overlays/prod"},
		{"manifests", repo, "manifests"},
	}

	// The install with both optional components, as the manifests' own
	// comment suggests using them.
	install := t.TempDir()
	if err := os.CopyFS(filepath.Join(install, "baton", "manifests"), os.DirFS(filepath.Join(repo, "manifests"))); err != nil {
		t.Fatal(err)
	}
	writeTree(t, install, map[string]string{"site/kustomization.yaml": `resources: [../baton/manifests]
components:
  - ../baton/manifests/components/monitoring
  - ../baton/manifests/components/namespaced-rbac
`})
	trees = append(trees, kustomizeTree{"manifests/with-components", install, "site"})

	bench := t.TempDir()
	writeBenchTree(t, bench, benchShape{teams: 2, appsPerTeam: 20})
	trees = append(trees, kustomizeTree{"bench/200-objects", bench, benchOverlay})

	for name, files := range edgeTrees {
		root := t.TempDir()
		writeTree(t, root, files)
		trees = append(trees, kustomizeTree{"edge/" + name, root, "."})
	}
	return append(trees, moduleCacheTrees(t)...)
}

// moduleCacheTrees are real-world kustomizations shipped in modules the test
// environment downloads; missing modules are skipped with a message.
func moduleCacheTrees(t *testing.T) []kustomizeTree {
	t.Helper()
	cache := goEnv(t, "GOMODCACHE")
	var trees []kustomizeTree
	for _, m := range []struct{ module, glob string }{
		{"sigs.k8s.io/kwok@*", "**"},
		{"k8s.io/kubernetes@*", "hack/testdata/kustomize"},
		{"k8s.io/cli-runtime@*", "artifacts/kustomization"},
	} {
		mods, _ := filepath.Glob(filepath.Join(cache, filepath.FromSlash(m.module)))
		if len(mods) == 0 {
			t.Logf("no %s in %s: its kustomizations are not compared", m.module, cache)
			continue
		}
		mod := mods[len(mods)-1]
		err := filepath.WalkDir(mod, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
				return err
			}
			dir, _ := filepath.Rel(mod, filepath.Dir(p))
			dir = filepath.ToSlash(dir)
			if m.glob == "**" || dir == m.glob {
				trees = append(trees, kustomizeTree{filepath.Base(mod) + "/" + dir, mod, dir})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return trees
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := execOutput("go", "env", name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// edgeTrees aim at the code third_party/kustomize-api changes: id
// collisions (where ids differ only by the default namespace, or by a
// namespace on a cluster-scoped kind), namespace conflicts, name references
// through YAML aliases and through metadata, RBAC across namespaces,
// deletions and merges by patch and generator, vars and replacements.
var edgeTrees = map[string]map[string]string{
	"duplicate-id": {
		"kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
		"a.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		"b.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
	},
	"duplicate-id-default-namespace": {
		"kustomization.yaml": "resources: [a.yaml, b.yaml]\n",
		"a.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		"b.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: default\n",
	},
	"duplicate-id-cluster-scoped": {
		"kustomization.yaml": "resources: [a.yaml]\n",
		"a.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: x
  namespace: ignored
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: x
`,
	},
	"same-name-other-kinds-and-namespaces": {
		"kustomization.yaml": "namePrefix: p-\nresources: [a.yaml]\n",
		"a.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: one
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: two
---
apiVersion: v1
kind: Secret
metadata:
  name: x
  namespace: one
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
  namespace: one
spec:
  template:
    spec:
      containers:
        - name: x
          envFrom:
            - configMapRef: {name: x}
            - secretRef: {name: x}
`,
	},
	"namespace-conflict": {
		"kustomization.yaml": "namespace: three\nresources: [a.yaml]\n",
		"a.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: one
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: two
`,
	},
	"yaml-aliases": {
		"kustomization.yaml": "namePrefix: p-\nnamespace: apps\nresources: [a.yaml]\nconfigMapGenerator:\n  - name: env\n    literals: [A=1]\n",
		"a.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels
    app: web
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: web
          envFrom:
            - configMapRef: {name: env}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
`,
	},
	"name-reference-into-metadata": {
		"kustomization.yaml": "namePrefix: p-\nresources: [a.yaml]\nconfigurations: [refs.yaml]\n",
		"refs.yaml": `nameReference:
  - kind: ConfigMap
    fieldSpecs:
      - kind: Deployment
        path: metadata/annotations/config
`,
		"a.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    config: cfg
spec:
  template:
    spec:
      containers:
        - name: web
          envFrom:
            - configMapRef: {name: cfg}
`,
	},
	"rbac-across-namespaces": {
		"kustomization.yaml": "namePrefix: p-\nnameSuffix: -s\nresources: [a.yaml]\n",
		"a.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: robot
  namespace: one
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: robot
  namespace: two
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: reader
  namespace: two
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read
  namespace: two
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: reader
subjects:
  - kind: ServiceAccount
    name: robot
    namespace: one
  - kind: ServiceAccount
    name: robot
    namespace: two
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: admin
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: admin
subjects:
  - kind: ServiceAccount
    name: robot
    namespace: one
`,
	},
	"patches-deletes-merges": {
		"kustomization.yaml": `namePrefix: p-
resources: [a.yaml]
patchesStrategicMerge:
  - delete-b.yaml
  - scale-a.yaml
patches:
  - target: {kind: Deployment}
    patch: |-
      - op: add
        path: /spec/paused
        value: false
configMapGenerator:
  - name: env
    literals: [A=1, B=2]
  - name: other
    behavior: create
    literals: [C=3]
secretGenerator:
  - name: creds
    literals: [password=x]
replicas:
  - name: c
    count: 4
sortOptions:
  order: fifo
`,
		"a.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: a
spec:
  template:
    spec:
      containers:
        - name: a
          envFrom:
            - configMapRef: {name: env}
            - secretRef: {name: creds}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
spec:
  replicas: 1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: c
spec:
  replicas: 1
`,
		"delete-b.yaml": "$patch: delete\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n",
		"scale-a.yaml":  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: 3\n",
	},
	"generator-merge-and-replace": {
		"kustomization.yaml": `resources: [base]
namePrefix: o-
configMapGenerator:
  - name: env
    behavior: merge
    literals: [B=overlay]
  - name: flags
    behavior: replace
    literals: [F=1]
`,
		"base/kustomization.yaml": `namePrefix: b-
resources: [a.yaml]
configMapGenerator:
  - name: env
    literals: [A=1, B=2]
  - name: flags
    literals: [E=0]
`,
		"base/a.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: a
spec:
  template:
    spec:
      volumes:
        - name: flags
          configMap: {name: flags}
      containers:
        - name: a
          envFrom:
            - configMapRef: {name: env}
`,
	},
	"vars-and-replacements": {
		"kustomization.yaml": `namePrefix: p-
resources: [a.yaml]
vars:
  - name: SVC
    objref: {kind: Service, name: web, apiVersion: v1}
replacements:
  - source: {kind: Service, name: web, fieldPath: spec.ports.0.port}
    targets:
      - select: {kind: Deployment}
        fieldPaths: [spec.template.spec.containers.0.ports.0.containerPort]
`,
		"a.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - port: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          args: ["--upstream=$(SVC)"]
          ports:
            - containerPort: 1
`,
	},
}
