package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitRequest describes a commit to make on top of a base commit: the
// base's tree with some files written, some folders replaced by existing
// trees, and some paths deleted. Paths are slash-separated and relative to
// the repository root.
type CommitRequest struct {
	// Branch is the branch the commit is meant for; it names the commit in
	// errors only (Push moves the branch).
	Branch string
	// Parent is the base commit, which must be in the local store (the
	// Commit of a Revision of this repository is). Empty makes a root
	// commit from an empty tree.
	Parent string
	// Files are written, replacing any file at the same path; folders on
	// the way are created. A file keeps its executable bit when replaced.
	Files map[string][]byte
	// Trees replace the folder at each path with the tree of that hash (a
	// Snapshot.TreeHash of this repository): the cheap way to copy a whole
	// folder from another revision.
	Trees map[string]string
	// Delete removes files or whole folders. Deleting a path that does not
	// exist is not an error, so that a retried request does the same.
	Delete []string
	// Author is who wrote the change; a zero When means now.
	Author Signature
	// Committer is who made the commit; zero means Author.
	Committer Signature
	// Message is the commit message (trailers go in its last paragraph).
	Message string
	// Signer, when set, signs the commit (an OpenPGPSigner); nil leaves it
	// unsigned.
	Signer Signer
}

// PushRequest moves a remote branch to a commit made by Commit, if nobody
// moved it first.
type PushRequest struct {
	// Branch is the branch to move, e.g. env/staging.
	Branch string
	// Commit is the commit to move it to.
	Commit string
	// ExpectedOld is the commit the branch must be at for the push to
	// happen (compare-and-swap); empty means the branch must not exist.
	ExpectedOld string
}

// Commit creates the commit in the local object store and returns its hash.
// Nothing is sent to the remote until Push.
func (r *Repository) Commit(ctx context.Context, req CommitRequest) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(err error) (string, error) {
		return "", &Error{Op: "commit", Repository: r.url, Branch: req.Branch, Err: err}
	}
	if r.closed {
		return fail(errors.New("repository is closed"))
	}
	if strings.TrimSpace(req.Message) == "" {
		return fail(errors.New("message is required"))
	}
	if req.Author.Name == "" || req.Author.Email == "" {
		return fail(errors.New("author name and email are required"))
	}
	edits, err := collectEdits(req)
	if err != nil {
		return fail(err)
	}
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	var parents []plumbing.Hash
	var baseTree plumbing.Hash
	if req.Parent != "" {
		p := plumbing.NewHash(req.Parent)
		c, err := r.store.commitLocked(p)
		if err != nil {
			return fail(fmt.Errorf("parent %s is not in the local store (poll first): %w", req.Parent, err))
		}
		parents, baseTree = []plumbing.Hash{p}, c.TreeHash
	}
	for p, h := range req.Trees {
		if !r.store.hasLocked(plumbing.NewHash(h)) {
			return fail(fmt.Errorf("tree %s for %s is not in the local store", h, p))
		}
	}
	tree, err := r.editTreeLocked(baseTree, edits)
	if err != nil {
		return fail(err)
	}
	if tree.IsZero() {
		if tree, err = r.writeTreeLocked(nil); err != nil {
			return fail(err)
		}
	}
	author := object.Signature{Name: req.Author.Name, Email: req.Author.Email, When: req.Author.When}
	if author.When.IsZero() {
		author.When = r.clock.Now()
	}
	committer := author
	if req.Committer.Name != "" {
		committer = object.Signature{Name: req.Committer.Name, Email: req.Committer.Email, When: req.Committer.When}
		if committer.When.IsZero() {
			committer.When = r.clock.Now()
		}
	}
	c := &object.Commit{Author: author, Committer: committer, Message: req.Message,
		TreeHash: tree, ParentHashes: parents}
	if req.Signer != nil {
		if err := signCommit(c, req.Signer); err != nil {
			return fail(err)
		}
	}
	obj := r.store.st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return fail(err)
	}
	h, err := r.store.st.SetEncodedObject(obj)
	if err != nil {
		return fail(err)
	}
	// The reference keeps the commit through a compaction until it is
	// pushed.
	if err := r.store.setRefLocked(pendingRefPrefix+h.String(), h); err != nil {
		return fail(err)
	}
	return h.String(), nil
}

// edit is one change at a path: a blob to write, a tree to put, or a
// deletion (both hashes zero).
type edit struct {
	blob []byte
	tree plumbing.Hash
	del  bool
}

// collectEdits validates the request's paths and returns them as edits.
func collectEdits(req CommitRequest) (map[string]edit, error) {
	edits := map[string]edit{}
	add := func(field, p string, e edit) error {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("%s: invalid path %q", field, p)
		}
		if _, dup := edits[p]; dup {
			return fmt.Errorf("%s: path %q is changed twice", field, p)
		}
		edits[p] = e
		return nil
	}
	for p, b := range req.Files {
		if err := add("files", p, edit{blob: b}); err != nil {
			return nil, err
		}
	}
	for p, h := range req.Trees {
		if len(h) != 40 {
			return nil, fmt.Errorf("trees: %q is not a tree hash", h)
		}
		if err := add("trees", p, edit{tree: plumbing.NewHash(h)}); err != nil {
			return nil, err
		}
	}
	for _, p := range req.Delete {
		if err := add("delete", p, edit{del: true}); err != nil {
			return nil, err
		}
	}
	// A path under a written file or a replaced tree would be lost.
	for p := range edits {
		for dir := parentDir(p); dir != "."; dir = parentDir(dir) {
			if d, ok := edits[dir]; ok && !d.del {
				return nil, fmt.Errorf("path %q is inside %q, which is also replaced", p, dir)
			}
		}
	}
	return edits, nil
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "."
	}
	return p[:i]
}

// editTreeLocked applies edits (paths relative to the tree) to the tree
// base (zero: empty) and returns the new tree's hash, zero when it is empty.
func (r *Repository) editTreeLocked(base plumbing.Hash, edits map[string]edit) (plumbing.Hash, error) {
	entries := map[string]object.TreeEntry{}
	if !base.IsZero() {
		t, err := object.GetTree(r.store.st, base)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("tree %s: %w", base, err)
		}
		for _, e := range t.Entries {
			entries[e.Name] = e
		}
	}
	// Group edits by their first path component.
	nested := map[string]map[string]edit{}
	for p, e := range edits {
		name, rest, deeper := strings.Cut(p, "/")
		if deeper {
			if nested[name] == nil {
				nested[name] = map[string]edit{}
			}
			nested[name][rest] = e
			continue
		}
		old, had := entries[name]
		switch {
		case e.del:
			delete(entries, name)
		case !e.tree.IsZero():
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: e.tree}
		default:
			obj := r.store.st.NewEncodedObject()
			obj.SetType(plumbing.BlobObject)
			w, err := obj.Writer()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			if _, err := w.Write(e.blob); err != nil {
				return plumbing.ZeroHash, err
			}
			_ = w.Close()
			h, err := r.store.st.SetEncodedObject(obj)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			mode := filemode.Regular
			if had && old.Mode == filemode.Executable {
				mode = filemode.Executable
			}
			entries[name] = object.TreeEntry{Name: name, Mode: mode, Hash: h}
		}
	}
	for name, sub := range nested {
		var subBase plumbing.Hash
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir {
			subBase = e.Hash
		}
		h, err := r.editTreeLocked(subBase, sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			delete(entries, name) // git keeps no empty folders
		} else {
			entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
		}
	}
	if len(entries) == 0 {
		return plumbing.ZeroHash, nil
	}
	list := make([]object.TreeEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	return r.writeTreeLocked(list)
}

func (r *Repository) writeTreeLocked(entries []object.TreeEntry) (plumbing.Hash, error) {
	sort.Sort(object.TreeEntrySorter(entries))
	obj := r.store.st.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.store.st.SetEncodedObject(obj)
}

// Push moves the remote branch to req.Commit if it is at req.ExpectedOld,
// sending the objects the commit adds to its parents. The remote applies
// the update only if the branch is still at ExpectedOld when it takes the
// ref lock, so two writers can never both win. A branch found elsewhere
// fails with an error matching ErrLeaseLost: read the new head, rebuild the
// commit on it, and push again.
func (r *Repository) Push(ctx context.Context, req PushRequest) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(err error) error {
		return &Error{Op: "push", Repository: r.url, Branch: req.Branch, Err: err}
	}
	if r.closed {
		return fail(errors.New("repository is closed"))
	}
	commit := plumbing.NewHash(req.Commit)
	// Whatever the outcome, the commit is no longer pending: it is on the
	// remote, or the caller rebuilds it on the branch's new head at its next
	// attempt (nothing pushes the same commit twice). Kept, the references
	// would pile up, one commit per failed evaluation, each carried through
	// every compaction. A commit that did not land is deleted too (its
	// trees and blobs may be shared; compaction drops them); should the
	// remote have taken it after all, the next poll fetches it.
	defer func() { r.dropPending(commit, err != nil) }()
	if plumbing.NewBranchReferenceName(req.Branch).Validate() != nil || req.Branch == "" {
		return fail(fmt.Errorf("invalid branch name %q", req.Branch))
	}
	var old plumbing.Hash
	if req.ExpectedOld != "" {
		old = plumbing.NewHash(req.ExpectedOld)
	}
	ctx, cancel := context.WithTimeout(ctx, r.settings.Timeout.Duration)
	defer cancel()
	r.warnInsecure()

	objects, err := r.pushObjects(commit, old)
	if err != nil {
		return fail(err)
	}
	rem, red, err := r.connect()
	if err != nil {
		return r.wrap(ctx, "push", req.Branch, err, nil, red)
	}
	defer rem.close()
	start := r.clock.Now()
	err = rem.push(ctx, r.store, pushCommand{branch: req.Branch, old: old, new: commit, objects: objects})
	if errors.Is(err, ErrLeaseLost) {
		err = &Error{Op: "push", Repository: r.url, Branch: req.Branch, Kind: ErrLeaseLost,
			Err: errors.New(strings.TrimPrefix(err.Error(), ErrLeaseLost.Error()+": "))}
	} else {
		err = r.wrap(ctx, "push", req.Branch, err, rem, red)
	}
	r.observe("push", start, err)
	return err
}

// dropPending removes commit's pending reference and, when the push
// failed, the commit object itself if it is a loose object Commit wrote.
func (r *Repository) dropPending(commit plumbing.Hash, failed bool) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	name := pendingRefPrefix + commit.String()
	if _, ok := r.store.refLocked(name); !ok {
		return // not a commit of ours: leave it alone
	}
	_ = r.store.removeRefLocked(name)
	if failed {
		_ = r.store.st.DeleteLooseObject(commit)
	}
}

// pushObjects lists the objects of commit that its parents and the expected
// old head (when the store has them) do not already hold: the remote has
// those.
func (r *Repository) pushObjects(commit, old plumbing.Hash) ([]plumbing.Hash, error) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	c, err := r.store.commitLocked(commit)
	if err != nil {
		return nil, fmt.Errorf("commit %s is not in the local store: %w", commit, err)
	}
	known := map[plumbing.Hash]bool{}
	for _, base := range append(append([]plumbing.Hash{}, c.ParentHashes...), old) {
		if base.IsZero() || !r.store.hasLocked(base) {
			continue
		}
		objs, err := missingObjects(r.store.st, func(h plumbing.Hash) bool { return known[h] }, base)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			known[o] = true
		}
	}
	return missingObjects(r.store.st, func(h plumbing.Hash) bool { return known[h] }, commit)
}
