package promote

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/baton-gitops/baton/render"
)

// ChangeKind says what a promotion does to a file.
type ChangeKind string

const (
	// Added: the file is new on the target.
	Added ChangeKind = "added"
	// Modified: the file's content changes.
	Modified ChangeKind = "modified"
	// Deleted: the source commit no longer has the file.
	Deleted ChangeKind = "deleted"
)

// Change is one file a promotion changes on the target branch.
type Change struct {
	Path string
	Kind ChangeKind
}

// ImageChange is an image tag carried from the source overlay into the
// target overlay.
type ImageChange struct {
	// Name is the image name as the overlays' images: entries give it.
	Name string
	// From and To are the target's pin before and after: "tag",
	// "@digest" or "tag@digest".
	From, To string
}

// fileDiff is a path whose file differs between the source and the target
// tree. Hashes are git blob hashes; empty means the file is absent.
type fileDiff struct {
	path           string
	source, target string
	// irregular marks a symbolic link or submodule on either side, which
	// a promotion cannot copy as a file.
	irregular bool
}

// planInput is everything the promotion of one source commit onto one
// target head depends on, read from the two trees beforehand.
type planInput struct {
	// diffs are the files that differ between the trees, any path.
	diffs      []fileDiff
	promotable func(path string) bool
	// sourceImages are the images: entries of the source overlay.
	sourceImages []render.Image
	// targetKustPath is the target overlay's kustomization file, empty
	// when it has none; targetKust is its content.
	targetKustPath string
	targetKust     []byte
}

// plan is the promotion commit's content relative to the target head.
type plan struct {
	// copy lists paths whose content is taken from the source commit.
	copy []string
	// delete lists paths removed because the source commit lacks them.
	delete []string
	// edits are files rewritten in place (the target overlay's
	// kustomization, with carried image tags).
	edits   map[string][]byte
	changes []Change
	images  []ImageChange
}

func (p plan) empty() bool { return len(p.copy) == 0 && len(p.delete) == 0 && len(p.edits) == 0 }

// planPromotion computes the promotion commit's content: the target tree
// with every promotable path replaced by its content at the source commit,
// and the source overlay's pinned image tags carried into the target
// overlay for the images both list. It is a pure function: the same
// inputs give the same plan, so the result is fully determined by the
// source commit and the target head.
func planPromotion(in planInput) (plan, error) {
	p := plan{edits: map[string][]byte{}}
	var irregular []string
	for _, d := range in.diffs {
		if !in.promotable(d.path) {
			continue
		}
		if d.irregular {
			irregular = append(irregular, d.path)
			continue
		}
		switch {
		case d.source == d.target:
		case d.source == "":
			p.delete = append(p.delete, d.path)
			p.changes = append(p.changes, Change{Path: d.path, Kind: Deleted})
		case d.target == "":
			p.copy = append(p.copy, d.path)
			p.changes = append(p.changes, Change{Path: d.path, Kind: Added})
		default:
			p.copy = append(p.copy, d.path)
			p.changes = append(p.changes, Change{Path: d.path, Kind: Modified})
		}
	}
	if len(irregular) > 0 {
		sort.Strings(irregular)
		return plan{}, fmt.Errorf("promotable paths %s are symbolic links or submodules, which a promotion does not copy: exclude them in paths.exclude",
			strings.Join(irregular, ", "))
	}
	// A folder replaced by a file takes its content with it: deleting
	// files below a written path would be refused as a double edit.
	p.delete = slices.DeleteFunc(p.delete, func(d string) bool {
		for _, c := range p.copy {
			if strings.HasPrefix(d, c+"/") {
				return true
			}
		}
		return false
	})
	if len(p.delete) == 0 {
		p.delete = nil
	}
	if in.targetKustPath != "" {
		edited, changes, err := carryImages(in.sourceImages, in.targetKust)
		if err != nil {
			return plan{}, fmt.Errorf("%s: %w", in.targetKustPath, err)
		}
		if len(changes) > 0 {
			p.edits[in.targetKustPath] = edited
			p.images = changes
			p.changes = append(p.changes, Change{Path: in.targetKustPath, Kind: Modified})
		}
	}
	sort.Strings(p.copy)
	sort.Strings(p.delete)
	sort.Slice(p.changes, func(i, j int) bool { return p.changes[i].Path < p.changes[j].Path })
	return p, nil
}

// carryImages sets, in the target kustomization, the tag and digest of
// every image that both overlays list and the source pins. The target's
// newName is kept: registries may differ per environment.
func carryImages(source []render.Image, targetKust []byte) ([]byte, []ImageChange, error) {
	target, err := render.Images(targetKust)
	if err != nil {
		return nil, nil, err
	}
	pins := carried(source, target)
	var set []render.Image
	var changes []ImageChange
	for _, t := range target {
		s, ok := pins[t.Name]
		if !ok || (s.NewTag == t.NewTag && s.Digest == t.Digest) {
			continue
		}
		set = append(set, render.Image{Name: t.Name, NewName: t.NewName, NewTag: s.NewTag, Digest: s.Digest})
		changes = append(changes, ImageChange{Name: t.Name, From: pin(t), To: pin(s)})
	}
	if len(set) == 0 {
		return targetKust, nil, nil
	}
	out, err := render.SetImages(targetKust, set...)
	if err != nil {
		return nil, nil, err
	}
	return out, changes, nil
}

// carried returns the source images that are carried: pinned (a tag or a
// digest) and listed by the target overlay too, by name.
func carried(source, target []render.Image) map[string]render.Image {
	names := map[string]bool{}
	for _, t := range target {
		names[t.Name] = true
	}
	out := map[string]render.Image{}
	for _, s := range source {
		if names[s.Name] && (s.NewTag != "" || s.Digest != "") {
			out[s.Name] = s
		}
	}
	return out
}

func pin(im render.Image) string {
	switch {
	case im.Digest == "":
		return im.NewTag
	default:
		return im.NewTag + "@" + im.Digest
	}
}

// contentKey identifies what a promotion of a source commit carries: its
// promotable files (path and blob hash) and the image pins it carries.
// Two source commits with equal keys promote the same content, which is
// how a held (reverted) promotion is recognised in a later commit.
func contentKey(files map[string]string, images map[string]render.Image) string {
	h := sha256.New()
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(h, "file\x00%s\x00%s\n", p, files[p])
	}
	names := make([]string, 0, len(images))
	for n := range images {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "image\x00%s\x00%s\x00%s\n", n, images[n].NewTag, images[n].Digest)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
