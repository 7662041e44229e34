package render

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzKustomization renders an overlay whose kustomization.yaml is the fuzz
// input, next to the fixture repository (so ../../base, components and
// patches resolve), and edits its images: list. Nothing may panic; a
// failure must return no objects; a success must return valid objects and a
// digest of its YAML. The seed corpus (the fixture kustomizations and the
// inputs of the refusal tests) runs under plain go test.
func FuzzKustomization(f *testing.F) {
	repo := fixtureMapFS(f)
	for p, file := range repo {
		if strings.HasSuffix(p, "kustomization.yaml") {
			f.Add(string(file.Data))
		}
	}
	for _, seed := range []string{
		"",
		"---\n",
		"null\n",
		"- a\n- b\n",
		"resources: [.]\n",
		"resources: [..]\n",
		"resources: [../fuzz]\n",
		"resources: [../../base, ../../base]\n",
		"resources: [../../base]\nnamePrefix: [a]\n",
		"resources: [../../base]\ncomponents: [../../base]\n",
		"kind: Component\nresources: [../../base]\n",
		"resources: [https://github.com/acme/infra//base]\n",
		"resources: [/etc/passwd]\n",
		"resources: [../../../../etc]\n",
		"helmCharts:\n- name: x\n",
		"transformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: https://example.com/p.yaml\n",
		"transformers:\n- |\n  apiVersion: builtin\n  kind: NamespaceTransformer\n  metadata: {name: n, namespace: x}\n",
		"resources: [../../base]\npatches:\n- patch: '[{\"op\": \"remove\", \"path\": \"/spec\"}]'\n  target: {kind: Deployment}\n",
		"resources: [../../base]\npatchesStrategicMerge:\n- |\n  apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: web}\n  spec: {replicas: -1}\n",
		"resources: [../../base]\nreplacements:\n- source: {kind: Service, fieldPath: metadata.name}\n  targets:\n  - select: {kind: Deployment}\n    fieldPaths: [spec.template.metadata.name]\n",
		"resources: [../../base]\nimages:\n- name: ghcr.io/acme/web\n  newTag: \"1.0\"\n  digest: sha256:abc\n",
		"configMapGenerator:\n- name: x\n  literals: [a=b, a=c]\n",
		"secretGenerator:\n- name: s\n  envs: [../../base/config/app.properties]\n",
		"resources: [../../base]\nvars:\n- name: X\n  objref: {kind: Service, name: web, apiVersion: v1}\n",
		"resources: [../../base]\nsortOptions:\n  order: fifo\n",
		"resources: [../../base]\nnamespace: \"x y\"\n",
		"&a [*a]\n",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, kust string) {
		tree := fstest.MapFS{"overlays/fuzz/kustomization.yaml": &fstest.MapFile{Data: []byte(kust)}}
		for p, file := range repo {
			tree[p] = file
		}
		r, err := New(Options{CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Render(context.Background(), &testSnapshot{FS: tree}, "overlays/fuzz")
		if err != nil {
			if res.Objects != nil || res.Digest != "" {
				t.Fatalf("failed render returned objects: %v", err)
			}
		} else {
			for _, o := range res.Objects {
				if o.GetAPIVersion() == "" || o.GetKind() == "" || o.GetName() == "" {
					t.Fatalf("invalid object passed validation: %v", o.Object)
				}
			}
			y, err := res.YAML()
			if err != nil || digestOf(y) != res.Digest {
				t.Fatalf("digest does not match YAML (%v)", err)
			}
		}

		if _, err := Images([]byte(kust)); err != nil {
			return
		}
		want := Image{Name: "ghcr.io/acme/web", NewTag: "fuzz-1"}
		out, err := SetImages([]byte(kust), want)
		if err != nil {
			return
		}
		got, err := Images(out)
		if err != nil {
			t.Fatalf("SetImages wrote a file Images cannot read: %v\n%s", err, out)
		}
		if !slices.Contains(got, want) {
			t.Fatalf("SetImages lost the image: %+v\n%s", got, out)
		}
	})
}

// fixtureMapFS loads testdata/repo into memory, so fuzz iterations do not
// read the disk.
func fixtureMapFS(tb testing.TB) fstest.MapFS {
	tb.Helper()
	root := filepath.Join("testdata", "repo")
	m := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(p)))
		m[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
