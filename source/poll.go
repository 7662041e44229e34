package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// PollResult is what one poll found, for every followed branch in the
// settings' order. It is plain data: the caller logs and records it.
type PollResult struct {
	// Repository is the URL without credentials.
	Repository string
	// Branches holds one result per followed branch.
	Branches []BranchResult
	// Fetched reports whether objects were downloaded (false for a poll
	// that found every head unchanged).
	Fetched bool
	// Compacted reports whether the object store was compacted.
	Compacted bool
}

// BranchResult is one branch's outcome of a poll.
type BranchResult struct {
	Branch string
	// Revision is the last good revision: the new head when it was fetched
	// (and verified, when required), otherwise the revision in effect
	// before. Nil until the branch has had a good revision.
	Revision *Revision
	// Changed reports whether Revision differs from the one the previous
	// Poll returned (or is the first one).
	Changed bool
	// Movement says how the remote head moved since the previous fetch.
	Movement Movement
	// ForcePush is set when the head moved to a commit that does not
	// descend from the previous head: history was rewritten. Git is the
	// truth, so the new head is followed; this is the audit record.
	ForcePush *ForcePush
	// Err is why the branch did not advance (branch missing, signature
	// invalid, remote unreachable, ...); Revision stays the last good one.
	Err error
}

// ForcePush records a rewritten branch history.
type ForcePush struct {
	Repository string
	Branch     string
	// Old is the head before, New the head now.
	Old, New string
	// Time is when the poll noticed it.
	Time time.Time
}

// Err joins the branches' errors, or returns nil if every branch is good.
func (p PollResult) Err() error {
	var errs []error
	for _, b := range p.Branches {
		if b.Err != nil {
			errs = append(errs, b.Err)
		}
	}
	return errors.Join(errs...)
}

// Poll asks the remote for the followed branches' heads and fetches only
// the heads that moved, at depth 1, into the shared store. An unchanged poll
// costs one reference advertisement and nothing else.
//
// The error is non-nil when talking to the remote failed (auth failed,
// host key mismatch, unreachable, timeout), while listing or fetching; the
// branches it concerns carry it too. Problems of single branches (missing,
// signature invalid) are only in their BranchResult.Err. Either way the
// result carries every branch's last good revision, so a failed poll never
// loses the state in effect.
func (r *Repository) Poll(ctx context.Context) (PollResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := PollResult{Repository: r.url}
	if r.closed {
		err := &Error{Op: "ls-remote", Repository: r.url, Err: errors.New("repository is closed")}
		return r.resultsLocked(res, nil, nil, err), err
	}
	ctx, cancel := context.WithTimeout(ctx, r.settings.Timeout.Duration)
	defer cancel()
	r.warnInsecure()

	rem, red, err := r.connect()
	if err != nil {
		err = r.wrap(ctx, "ls-remote", "", err, nil, red)
		return r.resultsLocked(res, nil, nil, err), err
	}
	defer rem.close()
	start := r.clock.Now()
	heads, err := rem.list(ctx)
	err = r.wrap(ctx, "ls-remote", "", err, rem, red)
	r.observe("ls-remote", start, err)
	if err != nil {
		return r.resultsLocked(res, nil, nil, err), err
	}

	moves, branchErr := r.planLocked(heads)
	if len(moves) == 0 {
		return r.resultsLocked(res, nil, branchErr, nil), nil
	}
	wants, haves := r.wantsLocked(moves)
	if len(wants) > 0 {
		start = r.clock.Now()
		err := rem.fetch(ctx, r.store, fetchRequest{wants: wants, haves: haves, maxBlob: r.maxBlob})
		if errors.Is(err, ErrBlobTooLarge) {
			// A branch brings an object over the limit: it is that branch's
			// failure, not the repository's. With several branches moved,
			// fetch them one by one, so that the others move on.
			r.observe("fetch", start, r.wrap(ctx, "fetch", "", err, rem, red))
			if len(moves) == 1 {
				branchErr[moves[0].branch] = r.wrap(ctx, "fetch", moves[0].branch, err, rem, red)
				return r.resultsLocked(res, nil, branchErr, nil), nil
			}
			start = r.clock.Now()
			moves, err = r.fetchEachLocked(ctx, rem, red, moves, haves, branchErr)
		}
		err = r.wrap(ctx, "fetch", "", err, rem, red)
		r.observe("fetch", start, err)
		if err != nil {
			for _, m := range moves {
				branchErr[m.branch] = withBranch(err, m.branch)
			}
			return r.resultsLocked(res, nil, branchErr, nil), err
		}
		res.Fetched = true
	}

	movements := map[string]branchMove{}
	for _, m := range moves {
		m.movement = r.movementLocked(ctx, rem, red, m.old, m.new, haves)
		if err := r.applyLocked(m); err != nil {
			branchErr[m.branch] = r.wrap(ctx, "verify", m.branch, err, nil, red)
		}
		movements[m.branch] = m
	}
	compacted, err := r.maybeCompactLocked()
	if err != nil {
		// The old generation still holds everything: keep using it.
		r.log.Warn("object store compaction failed", "repository", r.url, "error", err)
	}
	res.Compacted = compacted
	return r.resultsLocked(res, movements, branchErr, nil), nil
}

// branchMove is a followed branch whose remote head differs from what the
// store last recorded, or whose head has not become its good revision.
type branchMove struct {
	branch   string
	old, new plumbing.Hash
	movement Movement
}

// planLocked compares the remote heads with the store's and returns the
// branches to advance, and per-branch errors for branches the remote lacks.
func (r *Repository) planLocked(heads map[string]plumbing.Hash) ([]branchMove, map[string]error) {
	branchErr := map[string]error{}
	var moves []branchMove
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	for _, b := range r.settings.Branches {
		remoteHead, ok := heads[headRefPrefix+b]
		if !ok {
			branchErr[b] = &Error{Op: "ls-remote", Repository: r.url, Branch: b, Kind: ErrBranchMissing,
				Err: errors.New("the remote has no such branch; the last good revision stays in effect")}
			continue
		}
		local, _ := r.store.refLocked(headRefPrefix + b)
		if local == remoteHead && r.good[b] != nil && r.good[b].Commit == remoteHead.String() {
			continue
		}
		moves = append(moves, branchMove{branch: b, old: local, new: remoteHead})
	}
	return moves, branchErr
}

// wantsLocked lists the moved heads the store lacks, and the store's commits
// (which have complete trees) as haves.
func (r *Repository) wantsLocked(moves []branchMove) (wants, haves []plumbing.Hash) {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	seen := map[plumbing.Hash]bool{}
	for _, m := range moves {
		if !seen[m.new] && !r.store.hasLocked(m.new) {
			wants = append(wants, m.new)
		}
		seen[m.new] = true
	}
	refs, _ := r.store.refsLocked()
	for _, h := range refs {
		if !seen[h] && r.store.hasLocked(h) {
			haves = append(haves, h)
			seen[h] = true
		}
	}
	return wants, haves
}

// applyLocked records the new head and, when it passes verification, makes
// it the branch's good revision.
func (r *Repository) applyLocked(m branchMove) error {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	if err := r.store.setRefLocked(headRefPrefix+m.branch, m.new); err != nil {
		return fmt.Errorf("record head %s: %w", m.new, err)
	}
	c, err := r.store.commitLocked(m.new)
	if err != nil {
		return fmt.Errorf("read commit %s: %w", m.new, err)
	}
	var signer string
	if r.settings.requiresSignature(m.branch) {
		start := r.clock.Now()
		if signer, err = r.verify(c); err != nil {
			err = &Error{Op: "verify", Repository: r.url, Branch: m.branch, Kind: ErrSignatureInvalid, Err: err}
		}
		r.observe("verify", start, err)
		if err != nil {
			return err
		}
	}
	if err := r.store.setRefLocked(goodRefPrefix+m.branch, m.new); err != nil {
		return fmt.Errorf("record revision %s: %w", m.new, err)
	}
	r.good[m.branch] = newRevision(r.url, m.branch, c, r.store, signer)
	return nil
}

// resultsLocked assembles the per-branch results. allErr, when set, is the
// error of every branch (the remote could not be listed).
func (r *Repository) resultsLocked(res PollResult, moves map[string]branchMove, branchErr map[string]error, allErr error) PollResult {
	now := r.clock.Now()
	for _, b := range r.settings.Branches {
		br := BranchResult{Branch: b, Revision: r.good[b], Err: branchErr[b]}
		if allErr != nil {
			br.Err = withBranch(allErr, b)
		}
		if m, ok := moves[b]; ok {
			br.Movement = m.movement
			if m.movement == Rewritten {
				br.ForcePush = &ForcePush{Repository: r.url, Branch: b, Old: m.old.String(), New: m.new.String(), Time: now}
			}
		}
		if br.Revision != nil && r.reported[b] != br.Revision.Commit {
			br.Changed = true
			r.reported[b] = br.Revision.Commit
		}
		res.Branches = append(res.Branches, br)
	}
	return res
}

// withBranch returns a copy of a repository-level *Error naming branch.
func withBranch(err error, branch string) error {
	var e *Error
	if errors.As(err, &e) && e.Branch == "" {
		c := *e
		c.Branch = branch
		return &c
	}
	return err
}

// verify checks the commit's signature against the configured keyring.
func (r *Repository) verify(c *object.Commit) (string, error) {
	armored, keyring, err := readKeyring(r.settings.Signatures.KeyringFile)
	if err != nil {
		return "", err
	}
	return verifyCommit(c, armored, keyring)
}

// fetchEachLocked fetches the moved branches one at a time and returns
// those that succeeded; the others get their error in branchErr. It fails
// as a whole only when a branch fails for another reason than an object
// over the limit (the repository is then in trouble, not a branch).
func (r *Repository) fetchEachLocked(ctx context.Context, rem remote, red redactor, moves []branchMove, haves []plumbing.Hash,
	branchErr map[string]error) ([]branchMove, error) {
	var ok []branchMove
	for _, m := range moves {
		wants, _ := r.wantsLocked([]branchMove{m})
		if len(wants) > 0 {
			err := rem.fetch(ctx, r.store, fetchRequest{wants: wants, haves: haves, maxBlob: r.maxBlob})
			if err != nil && !errors.Is(err, ErrBlobTooLarge) {
				return nil, err
			}
			if err != nil {
				branchErr[m.branch] = r.wrap(ctx, "fetch", m.branch, err, rem, red)
				continue
			}
		}
		ok = append(ok, m)
	}
	return ok, nil
}
