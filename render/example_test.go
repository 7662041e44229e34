package render_test

import (
	"context"
	"fmt"
	"testing/fstest"

	"github.com/baton-gitops/baton/render"
)

// mapTree is a stand-in for *source.Snapshot (which reads a git tree): an
// in-memory tree whose TreeHash is fixed, since this one never changes.
type mapTree struct{ fstest.MapFS }

func (mapTree) TreeHash(string) (string, error) { return "e5a1f0c", nil }

func ExampleRenderer_Render() {
	tree := mapTree{fstest.MapFS{
		"base/kustomization.yaml": {Data: []byte("resources:\n  - web.yaml\n")},
		"base/web.yaml": {Data: []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0.0
`)},
		"overlays/prod/kustomization.yaml": {Data: []byte(`resources:
  - ../../base
namespace: prod
namePrefix: prod-
images:
  - name: ghcr.io/acme/web
    newTag: 1.4.0
`)},
	}}

	r, err := render.New(render.Options{})
	if err != nil {
		panic(err)
	}
	res, err := r.Render(context.Background(), tree, "overlays/prod")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range res.Objects {
		fmt.Printf("%s/%s/%s\n", o.GetKind(), o.GetNamespace(), o.GetName())
	}
	// Output:
	// Deployment/prod/prod-web
}

func ExampleSetImages() {
	kustomization := []byte(`resources:
  - ../../base
images:
  - name: ghcr.io/acme/web
    newTag: 1.3.0 # set by promotion
`)
	out, err := render.SetImages(kustomization, render.Image{Name: "ghcr.io/acme/web", NewTag: "1.4.0"})
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	// Output:
	// resources:
	//   - ../../base
	// images:
	//   - name: ghcr.io/acme/web
	//     newTag: 1.4.0 # set by promotion
}
