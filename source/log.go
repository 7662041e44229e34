package source

// This file was added for promote (issue 7), which needs a branch's recent
// history: the commits a promotion brings, and reverts of promotion commits
// on an environment branch. It uses the package's own fetch (deepen-since)
// and store; the owner of source/ may reshape it freely.

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// DefaultLogMax bounds the commits Log returns when LogRequest.Max is zero.
const DefaultLogMax = 500

// LogRequest asks for the history below a commit.
type LogRequest struct {
	// Commit is the newest commit; it must be in the local store (the
	// Commit of a Revision this repository returned is).
	Commit string
	// Since bounds the history: commits whose committer time is before it
	// are neither returned nor fetched. Required: the store is shallow on
	// purpose, and a walk to the root commit is never what a caller needs.
	Since time.Time
	// Max bounds how many commits are returned; zero means DefaultLogMax.
	Max int
}

// Log returns Commit and its ancestors whose committer time is not before
// Since, newest first (ties by hash), at most Max. History the shallow
// store lacks is fetched once from the remote, down to Since. The returned
// revisions have no Branch; their Snapshots read from the store.
func (r *Repository) Log(ctx context.Context, req LogRequest) ([]*Revision, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fail := func(err error) ([]*Revision, error) {
		return nil, &Error{Op: "log", Repository: r.url, Err: err}
	}
	if r.closed {
		return fail(errors.New("repository is closed"))
	}
	if req.Since.IsZero() {
		return fail(errors.New("since is required"))
	}
	if req.Max <= 0 {
		req.Max = DefaultLogMax
	}
	tip := plumbing.NewHash(req.Commit)
	r.store.mu.Lock()
	has := r.store.hasLocked(tip)
	r.store.mu.Unlock()
	if !has {
		return fail(fmt.Errorf("commit %s is not in the local store (poll first)", req.Commit))
	}
	commits, complete := r.walkLocked(tip, req.Since, req.Max, false)
	if complete {
		return r.revisionsLocked(commits), nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.settings.Timeout.Duration)
	defer cancel()
	r.warnInsecure()
	rem, red, err := r.connect()
	if err != nil {
		return nil, r.wrap(ctx, "fetch", "", err, nil, red)
	}
	defer rem.close()
	var haves []plumbing.Hash
	r.store.mu.Lock()
	refs, _ := r.store.refsLocked()
	r.store.mu.Unlock()
	seen := map[plumbing.Hash]bool{tip: true}
	for _, h := range refs {
		if !seen[h] {
			seen[h] = true
			haves = append(haves, h)
		}
	}
	start := r.clock.Now()
	err = rem.fetch(ctx, r.store, fetchRequest{wants: []plumbing.Hash{tip}, haves: haves, since: req.Since, maxBlob: r.maxBlob})
	err = r.wrap(ctx, "fetch", "", err, rem, red)
	r.observe("fetch", start, err)
	if err != nil {
		return nil, err
	}
	// After a deepen-since fetch a missing parent is older than Since.
	commits, _ = r.walkLocked(tip, req.Since, req.Max, true)
	return r.revisionsLocked(commits), nil
}

// walkLocked lists the commits reachable from tip that are not older than
// since, newest first, at most max. complete reports whether no parent
// that might be newer than since was missing from the store (with
// missingIsOld, missing parents are taken as older).
func (r *Repository) walkLocked(tip plumbing.Hash, since time.Time, max int, missingIsOld bool) ([]*object.Commit, bool) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	complete := true
	var out []*object.Commit
	q := &commitQueue{}
	seen := map[plumbing.Hash]bool{tip: true}
	if c, err := r.store.commitLocked(tip); err == nil {
		heap.Push(q, c)
	}
	for q.Len() > 0 && len(out) < max {
		c := heap.Pop(q).(*object.Commit)
		if c.Committer.When.Before(since) {
			continue
		}
		out = append(out, c)
		for _, p := range c.ParentHashes {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := r.store.commitLocked(p)
			if err != nil {
				if !missingIsOld {
					complete = false
				}
				continue
			}
			heap.Push(q, pc)
		}
	}
	return out, complete
}

func (r *Repository) revisionsLocked(commits []*object.Commit) []*Revision {
	out := make([]*Revision, len(commits))
	for i, c := range commits {
		out[i] = newRevision(r.url, "", c, r.store, "")
	}
	return out
}

// commitQueue orders commits newest first by committer time, ties by hash,
// so that a walk through merges lists commits in time order.
type commitQueue []*object.Commit

func (q commitQueue) Len() int { return len(q) }
func (q commitQueue) Less(i, j int) bool {
	ti, tj := q[i].Committer.When, q[j].Committer.When
	if !ti.Equal(tj) {
		return ti.After(tj)
	}
	return q[i].Hash.String() < q[j].Hash.String()
}
func (q commitQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)   { *q = append(*q, x.(*object.Commit)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}
