package source

import (
	"fmt"
	"os"
)

// maybeCompactLocked compacts the store once it holds more than maxPacks
// packs (each fetch adds one).
func (r *Repository) maybeCompactLocked() (bool, error) {
	r.store.mu.Lock()
	n, err := r.store.packCountLocked()
	r.store.mu.Unlock()
	if err != nil {
		return false, err
	}
	if n <= r.maxPacks {
		return false, nil
	}
	return true, r.compactLocked()
}

// compactLocked moves to a new store generation that holds only what the
// store's references need: the followed heads, the last good revisions and
// unpushed commits, each with its tree and without history. Revisions kept
// by the repository are moved to the new generation; the old one is deleted
// once no Snapshot handed out before refers to it.
func (r *Repository) compactLocked() error {
	next := r.gen + 1
	fresh, err := r.gens.compact(r.store, next)
	if err != nil {
		_ = os.RemoveAll(r.gens.dir(next))
		return err
	}
	if err := r.gens.setCurrent(next); err != nil {
		_ = fresh.st.Close()
		_ = os.RemoveAll(r.gens.dir(next))
		return fmt.Errorf("switch to generation %d: %w", next, err)
	}
	old := r.store
	r.store, r.gen = fresh, next
	for b, rev := range r.good {
		r.good[b] = rev.rebase(fresh)
	}
	old.retire()
	return nil
}
