package render

import (
	"io/fs"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Sources returns a function that names the file (and line) a rendered
// object of dir most likely came from, "overlays/dev/web.yaml:3", or ""
// when it cannot tell (a generated object, a name changed beyond a prefix
// or suffix). It is for messages about objects refused after the render:
// the files are read once, on the first call, so a render that needs no
// such message pays nothing.
func (r *Renderer) Sources(snap fs.FS, dir string) func(*unstructured.Unstructured) string {
	var (
		once sync.Once
		docs []manifestDoc
	)
	return func(obj *unstructured.Unstructured) string {
		once.Do(func() {
			if _, _, g, err := r.scanFolder(snap, dir); err == nil {
				docs, _ = g.allDocs()
			}
		})
		if from := sourcesOf(docs, obj.GetAPIVersion(), obj.GetKind(), obj.GetName()); len(from) > 0 {
			return joinSources(from)
		}
		return ""
	}
}
