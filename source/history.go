package source

import (
	"context"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

// Movement says how a branch head moved between two fetches.
type Movement int

const (
	// Unchanged: the head did not move.
	Unchanged Movement = iota
	// Initial: the first head seen for the branch.
	Initial
	// FastForward: the new head descends from the old one.
	FastForward
	// Rewritten: the new head does not descend from the old one; the
	// branch was force-pushed (or reset).
	Rewritten
	// Unknown: descent could not be established (the remote could not be
	// asked for more history).
	Unknown
)

// String names the movement.
func (m Movement) String() string {
	switch m {
	case Unchanged:
		return "unchanged"
	case Initial:
		return "initial"
	case FastForward:
		return "fast-forward"
	case Rewritten:
		return "rewritten"
	}
	return "unknown"
}

const (
	// clockSkew is how far committer clocks may disagree. Descent is looked
	// for among commits no older than the old head minus this: a
	// fast-forward whose commits carry times more than this before the old
	// head's would be reported as a rewrite (a false alarm, never a missed
	// sync: the new head is followed either way).
	clockSkew = time.Hour
	// maxHistoryWalk bounds how many commits a descent check visits.
	maxHistoryWalk = 10000
)

// movementLocked tells whether new descends from old. The store holds both
// commits but, being shallow, rarely the history between them: the common
// case (one commit on top of the old head) is answered by new's parents;
// otherwise the remote is asked for the commits newer than the old head
// (deepen-since), which are few for a fast-forward and for a typical
// force-push alike.
func (r *Repository) movementLocked(ctx context.Context, rem remote, red redactor, old, new plumbing.Hash, haves []plumbing.Hash) Movement {
	switch {
	case old.IsZero():
		return Initial
	case old == new:
		return Unchanged
	}
	r.store.mu.Lock()
	nc, errNew := r.store.commitLocked(new)
	oc, errOld := r.store.commitLocked(old)
	r.store.mu.Unlock()
	if errNew != nil || errOld != nil {
		return Unknown
	}
	if slices.Contains(nc.ParentHashes, old) {
		return FastForward
	}
	since := oc.Committer.When.Add(-clockSkew)
	if nc.Committer.When.Before(since) {
		// Older than the old head: it cannot descend from it (a reset to
		// an earlier commit, typically).
		return Rewritten
	}
	if found, complete := r.descends(new, old, since, false); found {
		return FastForward
	} else if complete {
		return Rewritten
	}
	var others []plumbing.Hash
	for _, h := range haves {
		if h != new {
			others = append(others, h)
		}
	}
	start := r.clock.Now()
	err := rem.fetch(ctx, r.store, fetchRequest{wants: []plumbing.Hash{new}, haves: others, since: since, maxBlob: r.maxBlob})
	err = r.wrap(ctx, "fetch", "", err, rem, red)
	r.observe("fetch", start, err)
	if err != nil {
		r.log.Warn("could not fetch history to check a moved head", "repository", r.url,
			"old", old.String(), "new", new.String(), "error", err)
		return Unknown
	}
	// After a deepen-since fetch, a missing parent is one the remote left
	// out for being older than since.
	if found, complete := r.descends(new, old, since, true); found {
		return FastForward
	} else if complete {
		return Rewritten
	}
	return Unknown
}

// descends walks the store's history from tip looking for target, not
// beyond commits older than since. complete reports whether the walk saw
// every path down to since (or, with missingIsOld, treated missing parents
// as older than since).
func (r *Repository) descends(tip, target plumbing.Hash, since time.Time, missingIsOld bool) (found, complete bool) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	seen := map[plumbing.Hash]bool{tip: true}
	queue := []plumbing.Hash{tip}
	complete = true
	for len(queue) > 0 {
		if len(seen) > maxHistoryWalk {
			return false, false
		}
		h := queue[0]
		queue = queue[1:]
		if h == target {
			return true, true
		}
		c, err := r.store.commitLocked(h)
		if err != nil {
			if !missingIsOld {
				complete = false
			}
			continue
		}
		if c.Committer.When.Before(since) {
			continue
		}
		for _, p := range c.ParentHashes {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return false, complete
}
