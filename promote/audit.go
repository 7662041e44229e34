package promote

import (
	"context"
	"fmt"
)

// heldBy returns the hold that keeps a source commit out of the target:
// the same commit, or the same promotable content, was promoted and then
// reverted there.
func heldBy(hist *historyCache, sourceCommit, key string) *hold {
	for i, h := range hist.h.holds {
		if sameCommit(h.sourceCommit, sourceCommit) || (h.key != "" && h.key == key) {
			return &hist.h.holds[i]
		}
	}
	return nil
}

func holdDetail(edge Edge, h hold) string {
	return fmt.Sprintf("%s@%s was promoted to %s by %s and reverted by %s (%s, %s); only newer content is promoted",
		edge.From, short(h.sourceCommit), edge.To, short(h.landed.Commit), short(h.revert.Commit),
		h.revert.Author.Name, h.revert.Time.UTC().Format("2006-01-02T15:04:05Z07:00"))
}

// heldEvent reports a hold once per held source commit.
func (p *Promoter) heldEvent(edge Edge, sourceCommit string, h hold) []Event {
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.held == sourceCommit {
		return nil
	}
	s.held = sourceCommit
	return []Event{{
		Kind: EventHeld, Edge: edge.Name(), Who: h.revert.Author.Name,
		SourceCommit: sourceCommit, TargetCommit: h.revert.Commit, When: h.revert.Time,
		Message: holdDetail(edge, h),
	}}
}

// mergedEvents reports, once, the promotion of the edge in effect on the
// target when it is new: landed (a merged pull request, or an auto push)
// since the last one reported. With a Journal, what was reported survives
// restarts and leader changes, so a promotion merged while no agent ran is
// reported by the next; without one, or on the journal's first use, only
// promotions that landed since the promoter started count (older history
// is not news). The merger is the forge's word when it has one, else the
// committer of the commit that landed.
func (p *Promoter) mergedEvents(ctx context.Context, edge Edge, to Environment, hist *historyCache) []Event {
	last := hist.h.last
	landed := ""
	if last != nil {
		landed = last.landed.Commit
	}
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	seen := s.landedKnown && s.landed == landed
	p.mu.Unlock()
	if seen {
		return nil
	}
	news := last != nil && !last.landed.Time.Before(p.started)
	if j := p.opts.Journal; j != nil {
		reported, found, err := j.Landed(ctx, edge.Name())
		switch {
		case err != nil:
			p.log.Debug("journal: read the last promotion reported", "edge", edge.Name(), "error", err)
		case found && reported == landed:
			news = false
		case found:
			news = last != nil
		}
		// What is reported below is recorded first: a failed write means
		// it may be reported again, never that it is lost.
		if err == nil && (!found || reported != landed) {
			if err := j.RecordLanded(ctx, edge.Name(), landed); err != nil {
				p.log.Debug("journal: record the promotion reported", "edge", edge.Name(), "error", err)
			}
		}
	}
	p.mu.Lock()
	s.landed, s.landedKnown = landed, true
	p.mu.Unlock()
	if !news || (edge.Policy == PolicyAuto && last.landed.Commit == last.commit.Commit && last.commit.Author.Email == p.opts.Author.Email) {
		// Auto pushes are reported as EventPromoted when made.
		return nil
	}
	ev := Event{
		Kind: EventMerged, Edge: edge.Name(), Who: last.landed.Committer.Name,
		SourceCommit: last.sourceCommit, TargetCommit: last.landed.Commit, When: last.landed.Time,
	}
	if p.opts.Forge != nil {
		if closed, err := p.opts.Forge.PullRequests(ctx, PromotionBranch(edge), to.Branch, "closed"); err == nil {
			for _, pr := range closed {
				if pr.Merged && (pr.MergeCommit == last.landed.Commit || pr.HeadSHA == last.commit.Commit) {
					ev.PullRequest = pr.Number
					if pr.MergedBy != "" {
						ev.Who = pr.MergedBy
					}
					break
				}
			}
		}
	}
	ev.Message = fmt.Sprintf("%s@%s landed on %s as %s, by %s", edge.From, short(last.sourceCommit), to.Branch, short(last.landed.Commit), ev.Who)
	if ev.PullRequest != 0 {
		ev.Message += fmt.Sprintf(" (pull request #%d)", ev.PullRequest)
	}
	return []Event{ev}
}
