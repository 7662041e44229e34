package promote

import (
	"context"
	"fmt"

	"github.com/baton-gitops/baton/source"
)

// Rollback reverts a promotion of an edge that left the target
// environment unhealthy, when the edge sets RevertOnUnhealthy: st is the
// state of the edge's target (To). The revert is pushed to the target
// branch on an auto edge, and proposed by pull request (from
// RevertBranch) otherwise. It acts only when the target is synced at its
// branch head and that head brought a promotion of this edge; the
// reverted content is then held (see Evaluate). Otherwise the result is
// Skipped.
func (p *Promoter) Rollback(ctx context.Context, e Edge, st SourceState) (Outcome, error) {
	edge, _, to, err := p.edge(e)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Edge: edge.Name(), Result: Skipped}
	if !edge.RevertOnUnhealthy || st.Revision == nil || st.Healthy {
		return out, nil
	}
	reason := st.Reason
	if reason == "" {
		reason = "unhealthy"
	}
	for attempt := 1; attempt <= p.opts.MaxAttempts; attempt++ {
		out.Attempts = attempt
		done, err := p.rollbackAttempt(ctx, edge, to, st, reason, &out)
		if err != nil || done {
			return out, err
		}
	}
	return out, fmt.Errorf("revert %s: gave up after %d attempts: the branch moved every time", edge.Name(), p.opts.MaxAttempts)
}

func (p *Promoter) rollbackAttempt(ctx context.Context, edge Edge, to Environment, st SourceState, reason string, out *Outcome) (bool, error) {
	branch := RevertBranch(edge)
	heads, err := p.poll(ctx, to.Branch, branch, PromotionBranch(edge))
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	head := heads[to.Branch]
	if head == nil || head.Commit != st.Revision.Commit {
		// The branch moved past what is synced: that commit gets its
		// own sync and health verdict first.
		return true, nil
	}
	out.TargetHead = head.Commit
	hist, err := p.history(ctx, edge, to, head, heads[PromotionBranch(edge)])
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	index := map[string]*source.Revision{}
	for _, r := range hist.log {
		index[r.Commit] = r
	}
	prom := promotionAt(edge.From, head, index, hist.squashed)
	if prom == nil || len(head.Parents) == 0 {
		return true, nil
	}
	out.SourceCommit = prom.sourceCommit
	parent := index[head.Parents[0]]
	if parent == nil {
		return false, fmt.Errorf("revert %s: parent %s of %s is not in the history read", edge.Name(), short(head.Parents[0]), short(head.Commit))
	}
	// The revert's tree is the parent's: everything the head changed is
	// undone, promotable or not.
	diffs, err := diffTrees(parent.Snapshot, head.Snapshot)
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	pl, err := planPromotion(planInput{diffs: diffs, promotable: func(string) bool { return true }})
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	out.Changes = pl.changes
	msg := revertMessage(head, fmt.Sprintf("%s unhealthy after %s (%s)", edge.To, short(head.Commit), reason))

	if edge.Policy == PolicyAuto {
		commit, err := p.commitPlan(ctx, to.Branch, head, parent.Snapshot, pl, msg)
		if err != nil {
			return false, fmt.Errorf("revert %s: commit: %w", edge.Name(), err)
		}
		lost, err := p.push(ctx, to.Branch, commit, head.Commit)
		if err != nil || lost {
			return false, err
		}
		out.Result, out.Commit = Reverted, commit
		out.Events = append(out.Events, p.revertedEvent(edge, head, prom, commit, 0)...)
		return true, nil
	}

	bh := heads[branch]
	pushed := false
	commit := ""
	if bh != nil && len(bh.Parents) == 1 && bh.Parents[0] == head.Commit {
		if x, ok := reverts(bh.Message); ok && x == head.Commit {
			commit = bh.Commit
		}
	}
	if commit == "" {
		if commit, err = p.commitPlan(ctx, branch, head, parent.Snapshot, pl, msg); err != nil {
			return false, fmt.Errorf("revert %s: commit: %w", edge.Name(), err)
		}
		old := ""
		if bh != nil {
			old = bh.Commit
		}
		lost, err := p.push(ctx, branch, commit, old)
		if err != nil || lost {
			return false, err
		}
		pushed = true
	}
	out.Commit = commit
	if p.opts.Forge == nil {
		out.Result, out.CompareURL = Reverted, p.compareURL(to.Branch, branch)
		if pushed {
			out.Events = append(out.Events, p.revertedEvent(edge, head, prom, commit, 0)...)
		}
		return true, nil
	}
	title := fmt.Sprintf("Revert \"%s\"", head.Subject())
	body := fmt.Sprintf("%s is unhealthy after `%s`, which promoted %s@%s: %s.\n\nMerging this pull request reverts it; the reverted content is then held (not promoted to %s again, only newer content).\n\n<!-- baton:revert %s %s -->\n",
		edge.To, short(head.Commit), edge.From, short(prom.sourceCommit), reason, edge.To, edge.Name(), head.Commit)
	sub := Outcome{}
	if err := p.pullRequest(ctx, edge, branch, to.Branch, title, body, commit, pushed, &sub); err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	out.Result, out.PullRequest = Reverted, sub.PullRequest
	if sub.Result == PullRequestOpened || sub.Result == PullRequestUpdated {
		out.Events = append(out.Events, p.revertedEvent(edge, head, prom, commit, sub.PullRequest.Number)...)
	}
	if sub.Result == Blocked {
		out.Result, out.Blocker = Blocked, sub.Blocker
	}
	return true, nil
}

func (p *Promoter) revertedEvent(edge Edge, head *source.Revision, prom *promotion, commit string, pr int) []Event {
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.reverted == head.Commit {
		return nil
	}
	s.reverted = head.Commit
	msg := fmt.Sprintf("reverted %s (promotion of %s@%s) on %s", short(head.Commit), edge.From, short(prom.sourceCommit), edge.To)
	if pr != 0 {
		msg = fmt.Sprintf("opened revert pull request #%d for %s (promotion of %s@%s) on %s", pr, short(head.Commit), edge.From, short(prom.sourceCommit), edge.To)
	}
	return []Event{{Kind: EventReverted, Edge: edge.Name(), Who: p.opts.Author.Name, SourceCommit: prom.sourceCommit,
		TargetCommit: commit, PullRequest: pr, When: p.clock.Now(), Message: msg}}
}
