package promote

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

// memTree is an in-memory Tree whose hashes, like git's, depend only on
// content: equal folders have equal hashes. It counts folder listings, to
// show that equal subtrees are skipped.
type memTree struct {
	fstest.MapFS
	listed map[string]int
}

func newMemTree(files map[string]string) *memTree {
	m := fstest.MapFS{}
	for p, c := range files {
		m[p] = &fstest.MapFile{Data: []byte(c)}
	}
	return &memTree{MapFS: m, listed: map[string]int{}}
}

func (t *memTree) ReadDir(name string) ([]fs.DirEntry, error) {
	t.listed[name]++
	return t.MapFS.ReadDir(name)
}

func (t *memTree) TreeHash(name string) (string, error) {
	info, err := fs.Stat(t.MapFS, name)
	if err != nil {
		return "", err
	}
	h := sha1.New()
	if !info.IsDir() {
		b, _ := t.MapFS.ReadFile(name)
		h.Write(b)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	entries, _ := t.MapFS.ReadDir(name)
	for _, e := range entries {
		sub, _ := t.TreeHash(path.Join(name, e.Name()))
		fmt.Fprintf(h, "%s %s\n", e.Name(), sub)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func describe(diffs []fileDiff) []string {
	var out []string
	for _, d := range diffs {
		kind := "modified"
		switch {
		case d.source == "":
			kind = "only-target"
		case d.target == "":
			kind = "only-source"
		}
		out = append(out, kind+" "+d.path)
	}
	sort.Strings(out)
	return out
}

func TestDiffTrees(t *testing.T) {
	common := map[string]string{}
	for i := range 50 {
		common[fmt.Sprintf("big/dir%d/file.yaml", i)] = fmt.Sprintf("n: %d\n", i)
	}
	src := map[string]string{"a/x.yaml": "x2", "a/new.yaml": "n", "b": "file now", "only/src/deep.yaml": "d"}
	dst := map[string]string{"a/x.yaml": "x1", "a/gone.yaml": "g", "b/inner.yaml": "was a folder", "c/old/y.yaml": "y"}
	for p, c := range common {
		src[p], dst[p] = c, c
	}
	s, d := newMemTree(src), newMemTree(dst)
	diffs, err := diffTrees(s, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"modified a/x.yaml", "only-source a/new.yaml", "only-source b", "only-source only/src/deep.yaml",
		"only-target a/gone.yaml", "only-target b/inner.yaml", "only-target c/old/y.yaml",
	}
	if got := describe(diffs); !reflect.DeepEqual(got, want) {
		t.Errorf("diffs\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.listed["big"] != 0 || d.listed["big"] != 0 {
		t.Errorf("the equal folder big/ was listed (%d, %d times)", s.listed["big"], d.listed["big"])
	}
	same, err := diffTrees(s, newMemTree(src))
	if err != nil || len(same) != 0 {
		t.Errorf("equal trees: %v %v", describe(same), err)
	}
}

func TestListFilesAndKustomization(t *testing.T) {
	tree := newMemTree(map[string]string{
		"base/a.yaml":                      "a",
		"overlays/dev/kustomization.yml":   "images:\n  - name: web\n    newTag: \"2\"\n",
		"overlays/staging/Kustomization":   "resources: []\n",
		"overlays/prod/kustomization.yaml": "images: nope\n",
	})
	m := newMatcher(testPipeline)
	files, err := listFiles(tree, m.promotable)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files["base/a.yaml"] == "" {
		t.Errorf("promotable files %v", files)
	}
	ims, err := overlayImages(tree, "overlays/dev")
	if err != nil || len(ims) != 1 || ims[0].NewTag != "2" {
		t.Errorf("dev images %v %v", ims, err)
	}
	if p, _, err := readKustomization(tree, "overlays/staging"); p != "overlays/staging/Kustomization" || err != nil {
		t.Errorf("staging kustomization %q %v", p, err)
	}
	if p, _, err := readKustomization(tree, "overlays/none"); p != "" || err != nil {
		t.Errorf("missing overlay: %q %v", p, err)
	}
	// Kustomize refuses a folder with two kustomization files; so does
	// promote, rather than carry the images of one of them.
	two := newMemTree(map[string]string{"o/kustomization.yaml": "{}\n", "o/kustomization.yml": "{}\n"})
	if _, _, err := readKustomization(two, "o"); err == nil || !strings.Contains(err.Error(), "more than one kustomization file") {
		t.Errorf("two kustomization files: error %v", err)
	}
	if _, err := overlayImages(tree, "overlays/prod"); err == nil || !strings.Contains(err.Error(), "overlays/prod/kustomization.yaml") {
		t.Errorf("bad images: error %v should name the file", err)
	}
}

// BenchmarkDiffTrees compares two 5,000-file trees that differ in one
// file: the cost follows the difference, not the repository.
func BenchmarkDiffTrees(b *testing.B) {
	files := map[string]string{}
	for i := range 5000 {
		files[fmt.Sprintf("apps/app%03d/res%02d.yaml", i/50, i%50)] = fmt.Sprintf("i: %d\n", i)
	}
	src := newMemTree(files)
	files["apps/app042/res07.yaml"] = "changed"
	dst := newMemTree(files)
	// Warm the hashes so the benchmark measures the walk.
	cached := func(t *memTree) Tree {
		hashes := map[string]string{}
		return hashCache{t, hashes}
	}
	s, d := cached(src), cached(dst)
	b.ResetTimer()
	for range b.N {
		diffs, err := diffTrees(s, d)
		if err != nil || len(diffs) != 1 {
			b.Fatalf("%v %v", diffs, err)
		}
	}
}

// hashCache memoises TreeHash, as git's stored tree hashes are free to
// read.
type hashCache struct {
	*memTree
	hashes map[string]string
}

func (h hashCache) TreeHash(name string) (string, error) {
	if v, ok := h.hashes[name]; ok {
		return v, nil
	}
	v, err := h.memTree.TreeHash(name)
	h.hashes[name] = v
	return v, err
}
