package render_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/baton-gitops/baton/render"
)

// TestKustomizationFile pins the one rule by which render, promote and
// baton set-image find an overlay's kustomization: kustomize's three names,
// a file only, never two.
func TestKustomizationFile(t *testing.T) {
	file := &fstest.MapFile{Data: []byte("resources: []\n")}
	tree := fstest.MapFS{
		"yaml/kustomization.yaml":          file,
		"yml/kustomization.yml":            file,
		"capital/Kustomization":            file,
		"kustomization.yaml":               file,
		"none/deployment.yaml":             file,
		"folder/kustomization.yaml/x.yaml": file, // a folder by that name is no kustomization
		"two/kustomization.yaml":           file,
		"two/Kustomization":                file,
		"other/kustomization.json":         file,
	}
	for dir, want := range map[string]string{
		"yaml": "kustomization.yaml", "yml": "kustomization.yml", "capital": "Kustomization",
		".": "kustomization.yaml", "": "kustomization.yaml",
		"none": "", "folder": "", "missing": "", "other": "",
	} {
		if got, err := render.KustomizationFile(tree, dir); got != want || err != nil {
			t.Errorf("KustomizationFile(%q) = %q, %v; want %q", dir, got, err, want)
		}
	}
	_, err := render.KustomizationFile(tree, "two")
	if err == nil || !strings.Contains(err.Error(), "folder two has more than one kustomization file: kustomization.yaml, Kustomization") {
		t.Errorf("two kustomization files: error %v", err)
	}
}
