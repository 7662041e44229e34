package promote

import (
	"context"
	"fmt"
	"strings"

	"github.com/baton-gitops/baton/internal/markdown"
)

// freeze handles an unhealthy (or operator-frozen) source: nothing is
// promoted out of it, and the open promotion pull request gets one comment
// per freeze saying why.
func (p *Promoter) freeze(ctx context.Context, edge Edge, to Environment, st SourceState, out Outcome) (Outcome, error) {
	reason := st.Reason
	if st.Frozen {
		reason = "frozen by an operator"
		if st.FrozenReason != "" {
			reason += ": " + st.FrozenReason
		}
	} else if reason == "" {
		reason = "unhealthy"
	}
	detail := fmt.Sprintf("%s is %s; promotions to %s are frozen", edge.From, reason, edge.To)
	if !st.Frozen {
		detail = fmt.Sprintf("%s is unhealthy at %s@%s (%s); promotions to %s are frozen", edge.From, edge.From, short(out.SourceCommit), reason, edge.To)
	}
	out.Result = Frozen
	out.Blocker = &GateResult{Gate: GateFrozen, Detail: detail}

	s := p.edgeState(edge.Name())
	p.mu.Lock()
	if !s.frozen || s.frozenCommit != out.SourceCommit {
		s.frozen, s.frozenCommit, s.commented = true, out.SourceCommit, false
		out.Events = append(out.Events, Event{Kind: EventFrozen, Edge: edge.Name(), SourceCommit: out.SourceCommit,
			When: p.clock.Now(), Message: detail})
	}
	commented := s.commented
	p.mu.Unlock()
	if commented || p.opts.Forge == nil {
		return out, nil
	}
	if err := p.freezeComment(ctx, edge, to, out.SourceCommit, detail); err != nil {
		// Not marked as commented: the next evaluation tries again.
		return out, fmt.Errorf("promote %s: comment on the frozen pull request: %w", edge.Name(), err)
	}
	p.mu.Lock()
	if s.frozen && s.frozenCommit == out.SourceCommit {
		s.commented = true
	}
	p.mu.Unlock()
	return out, nil
}

// freezeComment comments on the edge's open pull request, unless a
// comment for this freeze is there already (made before a restart).
func (p *Promoter) freezeComment(ctx context.Context, edge Edge, to Environment, sourceCommit, detail string) error {
	open, err := p.opts.Forge.PullRequests(ctx, PromotionBranch(edge), to.Branch, "open")
	if err != nil {
		return err
	}
	marker := fmt.Sprintf("<!-- baton:freeze %s %s -->", edge.Name(), sourceCommit)
	for _, pr := range open {
		comments, err := p.opts.Forge.Comments(ctx, pr.Number)
		if err != nil {
			return err
		}
		if containsMarker(comments, marker) {
			continue
		}
		// The detail carries health messages from the cluster: quoted, so
		// that they cannot mention or link anything.
		body := fmt.Sprintf("Promotion frozen: %s. Baton will not update this pull request until %s is healthy again; merging it now would promote past an unhealthy environment.\n\n%s\n",
			markdown.Code(detail), edge.From, marker)
		if err := p.opts.Forge.Comment(ctx, pr.Number, body); err != nil {
			return err
		}
	}
	return nil
}

func containsMarker(comments []string, marker string) bool {
	for _, c := range comments {
		if strings.Contains(c, marker) {
			return true
		}
	}
	return false
}
