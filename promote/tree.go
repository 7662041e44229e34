package promote

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/baton-gitops/baton/render"
)

// Tree is a commit's tree as the promoter reads it; *source.Snapshot is
// one.
type Tree interface {
	fs.ReadDirFS
	fs.ReadFileFS
	// TreeHash is the git hash of the tree or blob at name.
	TreeHash(name string) (string, error)
}

// diffTrees lists the files that differ between src and dst. Folders with
// equal tree hashes are skipped whole, so the cost follows the size of the
// difference, not of the repository.
func diffTrees(src, dst Tree) ([]fileDiff, error) {
	var out []fileDiff
	err := diffDir(src, dst, ".", &out)
	return out, err
}

func diffDir(src, dst Tree, dir string, out *[]fileDiff) error {
	sh, _ := src.TreeHash(dir)
	dh, _ := dst.TreeHash(dir)
	if sh != "" && sh == dh {
		return nil
	}
	se, err := dirEntries(src, dir)
	if err != nil {
		return err
	}
	de, err := dirEntries(dst, dir)
	if err != nil {
		return err
	}
	names := map[string]bool{}
	for n := range se {
		names[n] = true
	}
	for n := range de {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		p := path.Join(dir, name)
		s, d := se[name], de[name]
		sDir, dDir := s != nil && s.IsDir(), d != nil && d.IsDir()
		switch {
		case sDir && dDir:
			if err := diffDir(src, dst, p, out); err != nil {
				return err
			}
			continue
		case sDir:
			if err := allFiles(src, p, func(f fileDiff) { *out = append(*out, f) }); err != nil {
				return err
			}
		case dDir:
			if err := allFiles(dst, p, func(f fileDiff) {
				f.source, f.target = "", f.source
				*out = append(*out, f)
			}); err != nil {
				return err
			}
		}
		// Files (and a file facing a folder on the other side).
		f := fileDiff{path: p}
		if s != nil && !sDir {
			if f.source, err = fileHash(src, p, s); err != nil {
				return err
			}
			f.irregular = !s.Type().IsRegular()
		}
		if d != nil && !dDir {
			if f.target, err = fileHash(dst, p, d); err != nil {
				return err
			}
			f.irregular = f.irregular || !d.Type().IsRegular()
		}
		if (f.source != "" || f.target != "") && (f.source != f.target || f.irregular) {
			*out = append(*out, f)
		}
	}
	return nil
}

// allFiles calls fn for every file below dir of t, as source-side
// entries.
func allFiles(t Tree, dir string, fn func(fileDiff)) error {
	return fs.WalkDir(t, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		h, err := fileHash(t, p, d)
		if err != nil {
			return err
		}
		fn(fileDiff{path: p, source: h, irregular: !d.Type().IsRegular()})
		return nil
	})
}

// listFiles returns path → blob hash of every regular file of t that keep
// accepts, skipping folders skip rejects.
func listFiles(t Tree, keep func(string) bool) (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(t, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !keep(p) {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("promotable path %s is a symbolic link or submodule, which a promotion does not copy: exclude it in paths.exclude", p)
		}
		h, err := fileHash(t, p, d)
		if err != nil {
			return err
		}
		out[p] = h
		return nil
	})
	return out, err
}

// fileHash is the blob hash of a file; a link that does not resolve gets a
// marker so that it still shows as a difference.
func fileHash(t Tree, p string, d fs.DirEntry) (string, error) {
	h, err := t.TreeHash(p)
	if err != nil {
		if !d.Type().IsRegular() {
			return "unresolved:" + p, nil
		}
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return h, nil
}

// dirEntries lists a folder by name; a missing folder lists as empty.
func dirEntries(t Tree, dir string) (map[string]fs.DirEntry, error) {
	list, err := t.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read folder %s: %w", dir, err)
	}
	out := make(map[string]fs.DirEntry, len(list))
	for _, e := range list {
		out[e.Name()] = e
	}
	return out, nil
}

// readKustomization returns the path and content of an overlay's
// kustomization file (render.KustomizationFile), or an empty path when the
// overlay has none.
func readKustomization(t Tree, overlay string) (string, []byte, error) {
	name, err := render.KustomizationFile(t, overlay)
	if err != nil || name == "" {
		return "", nil, err
	}
	p := path.Join(overlay, name)
	b, err := t.ReadFile(p)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", p, err)
	}
	return p, b, nil
}

// overlayImages reads the images: entries of an overlay's kustomization.
func overlayImages(t Tree, overlay string) ([]render.Image, error) {
	p, b, err := readKustomization(t, overlay)
	if err != nil || p == "" {
		return nil, err
	}
	ims, err := render.Images(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return ims, nil
}
