package source

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
)

// Tree returns the hash of the root tree that Commit(req) would record,
// without making the commit: a caller compares it with an existing commit's
// Revision.Tree to tell whether that commit holds exactly this content.
// Only Parent, Files, Trees and Delete matter; the blobs and trees it
// writes stay unreferenced in the local store until a compaction.
func (r *Repository) Tree(ctx context.Context, req CommitRequest) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(err error) (string, error) {
		return "", &Error{Op: "tree", Repository: r.url, Branch: req.Branch, Err: err}
	}
	if r.closed {
		return fail(errors.New("repository is closed"))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	edits, err := collectEdits(req)
	if err != nil {
		return fail(err)
	}
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	var base plumbing.Hash
	if req.Parent != "" {
		c, err := r.store.commitLocked(plumbing.NewHash(req.Parent))
		if err != nil {
			return fail(fmt.Errorf("parent %s is not in the local store (poll first): %w", req.Parent, err))
		}
		base = c.TreeHash
	}
	tree, err := r.editTreeLocked(base, edits)
	if err != nil {
		return fail(err)
	}
	if tree.IsZero() {
		if tree, err = r.writeTreeLocked(nil); err != nil {
			return fail(err)
		}
	}
	return tree.String(), nil
}
