package promote

import (
	"time"

	"github.com/baton-gitops/baton/source"
)

// clockSkew is how far committer clocks may disagree when history is read
// down to a commit's time.
const clockSkew = time.Hour

// promotion is a promotion commit of an edge found on the target branch.
type promotion struct {
	// commit carries the trailers; landed is the commit on the target's
	// first-parent line that brought it: the commit itself, or the merge
	// of its pull request.
	commit, landed *source.Revision
	// sourceCommit is the source commit it carried; key its content key
	// (empty for commits written before Baton recorded one).
	sourceCommit, key string
}

// hold is a promotion that a later revert on the target branch undid: its
// content must not be promoted into the target again.
type hold struct {
	promotion
	revert *source.Revision
}

// targetHistory is what the target branch's history says about an edge.
type targetHistory struct {
	// last is the newest promotion still in effect, nil if none within
	// the history read.
	last *promotion
	// holds are reverted promotions newer than last, newest first.
	holds []hold
}

// analyzeTarget walks the target branch's first-parent line from head
// (the branch's own history; merged pull requests are inspected through
// their second parent) and finds the edge's latest promotion in effect
// and the reverted promotions after it. log is the branch's recent
// history, newest first; the walk ends where it ends. Pure.
//
// squashed names commits recognised as promotions by other means than their
// message (see Promoter.squashes): squash merges whose message kept
// neither Baton's trailers nor its pull request marker.
func analyzeTarget(from, head string, log []*source.Revision, squashed map[string]*promotion) targetHistory {
	index := make(map[string]*source.Revision, len(log))
	for _, r := range log {
		index[r.Commit] = r
	}
	// reverted maps a commit to the revert that undid it; a revert that
	// was itself reverted does not count, which the newest-first walk
	// sees first.
	reverted := map[string]*source.Revision{}
	var h targetHistory
	for c := index[head]; c != nil; {
		// A revert lands by itself, or as the head of a merged pull
		// request (the merge commit's other parents).
		for _, r := range append([]*source.Revision{c}, mergedParents(c, index)...) {
			// A rollback to an older commit reverts several at once.
			if reverted[r.Commit] == nil && reverted[c.Commit] == nil {
				for _, x := range revertedCommits(r.Message) {
					reverted[x] = r
				}
			}
		}
		if p := promotionAt(from, c, index, squashed); p != nil {
			rev := reverted[c.Commit]
			if rev == nil {
				rev = reverted[p.commit.Commit]
			}
			if rev == nil {
				h.last = p
				return h
			}
			h.holds = append(h.holds, hold{promotion: *p, revert: rev})
		}
		if len(c.Parents) == 0 {
			break
		}
		c = index[c.Parents[0]]
	}
	return h
}

// mergedParents returns the parents a merge commit brought in (all but
// the first) that the log holds.
func mergedParents(c *source.Revision, index map[string]*source.Revision) []*source.Revision {
	var out []*source.Revision
	for _, p := range c.Parents[min(1, len(c.Parents)):] {
		if pc := index[p]; pc != nil {
			out = append(out, pc)
		}
	}
	return out
}

// promotionAt returns the promotion of the edge out of from that commit c
// brings to the branch: c itself (a promotion pushed, rebased or squashed),
// or, for a merge, a merged parent.
func promotionAt(from string, c *source.Revision, index map[string]*source.Revision, squashed map[string]*promotion) *promotion {
	if p := asPromotion(from, c); p != nil {
		p.landed = c
		return p
	}
	if p := squashed[c.Commit]; p != nil {
		cp := *p
		cp.landed = c
		return &cp
	}
	for _, pc := range mergedParents(c, index) {
		if p := asPromotion(from, pc); p != nil {
			p.landed = c
			return p
		}
	}
	return nil
}

// asPromotion recognises a promotion commit of the edge out of from by its
// message: Baton's trailers, or what a squash merge of its pull request
// keeps of them (see squashedPromotion).
func asPromotion(from string, c *source.Revision) *promotion {
	env, commit, ok := promotedFrom(c)
	key, _ := c.Trailer(TrailerContent)
	if !ok {
		env, commit, key, ok = squashedPromotion(c.Message)
	}
	if !ok || env != from {
		return nil
	}
	return &promotion{commit: c, sourceCommit: commit, key: key}
}

// commitsBetween lists the commits of log reachable from to but not from
// from, newest first: the source commits a promotion brings. complete is
// false when from is not in the log (the list may then be cut short).
func commitsBetween(log []*source.Revision, from, to string) (out []*source.Revision, complete bool) {
	index := make(map[string]*source.Revision, len(log))
	for _, r := range log {
		index[r.Commit] = r
	}
	reach := func(start string) map[string]bool {
		seen := map[string]bool{}
		queue := []string{start}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if seen[c] {
				continue
			}
			seen[c] = true
			if r := index[c]; r != nil {
				queue = append(queue, r.Parents...)
			}
		}
		return seen
	}
	old := map[string]bool{}
	if from != "" {
		old = reach(from)
	}
	mine := reach(to)
	for _, r := range log {
		if mine[r.Commit] && !old[r.Commit] {
			out = append(out, r)
		}
	}
	return out, from != "" && index[from] != nil && mine[from]
}
