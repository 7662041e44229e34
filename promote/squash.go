package promote

import (
	"context"
	"strconv"
	"strings"

	"github.com/baton-gitops/baton/source"
)

// squashes finds the promotions of edge that were squash-merged with a
// message that kept neither Baton's trailers nor its marker (GitHub's
// "pull request title" setting, or a reviewer who rewrote the message).
// They are recognised, newest first on the target's first-parent line
// from head, by
//
//   - content: the commit has the tree and the parent of the promotion
//     branch's head (branchHead, nil when absent), which is the promotion
//     commit itself, squashed as it was proposed;
//   - the forge: the commit is the merge commit of a merged promotion pull
//     request, or its subject is the pull request's title with the forge's
//     "(#N)"; the pull request's description names the promotion;
//   - without a forge, the title alone, which gives the source commit's
//     short hash only.
//
// The forge is asked only when a commit on the line has a promotion
// title and is not recognised otherwise. Errors leave commits unrecognised
// (the next evaluation on a new head asks again).
func (p *Promoter) squashes(ctx context.Context, edge Edge, to Environment, head string, log []*source.Revision, branchHead *source.Revision) map[string]*promotion {
	index := make(map[string]*source.Revision, len(log))
	for _, r := range log {
		index[r.Commit] = r
	}
	var proposed *promotion
	if branchHead != nil && len(branchHead.Parents) == 1 {
		proposed = asPromotion(edge.From, branchHead)
	}
	out := map[string]*promotion{}
	type titled struct {
		c           *source.Revision
		short       string
		pullRequest int
	}
	var byTitle []titled
	for c := index[head]; c != nil; {
		if len(c.Parents) == 1 && asPromotion(edge.From, c) == nil {
			switch m := reTitle.FindStringSubmatch(c.Subject()); {
			case proposed != nil && c.Tree == branchHead.Tree && c.Parents[0] == branchHead.Parents[0]:
				out[c.Commit] = &promotion{commit: c, sourceCommit: proposed.sourceCommit, key: proposed.key}
			case m != nil && m[1] == edge.From && m[3] == edge.To:
				n, _ := strconv.Atoi(m[4])
				byTitle = append(byTitle, titled{c: c, short: m[2], pullRequest: n})
			}
		}
		if len(c.Parents) == 0 {
			break
		}
		c = index[c.Parents[0]]
	}
	if len(byTitle) == 0 {
		return out
	}
	var merged []PullRequest
	if p.opts.Forge != nil {
		closed, err := p.opts.Forge.PullRequests(ctx, PromotionBranch(edge), to.Branch, "closed")
		if err != nil {
			p.log.Debug("squash merges: list closed pull requests", "edge", edge.Name(), "error", err)
		}
		for _, pr := range closed {
			if pr.Merged {
				merged = append(merged, pr)
			}
		}
	}
	for _, t := range byTitle {
		prom := &promotion{commit: t.c, sourceCommit: t.short}
		if proposed != nil && strings.HasPrefix(proposed.sourceCommit, t.short) {
			prom.sourceCommit, prom.key = proposed.sourceCommit, proposed.key
		}
		for _, pr := range merged {
			if pr.MergeCommit != t.c.Commit && (t.pullRequest == 0 || pr.Number != t.pullRequest) {
				continue
			}
			if env, commit, key, ok := squashedPromotion(pr.Body); ok && env == edge.From && strings.HasPrefix(commit, t.short) {
				prom.sourceCommit, prom.key = commit, key
			}
			break
		}
		out[t.c.Commit] = prom
	}
	return out
}

// sameCommit reports whether two commit names are the same commit: equal,
// or one a short hash (at least 7 digits) of the other, as a squash merge's
// title gives it.
func sameCommit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	return a != "" && len(a) >= 7 && strings.HasPrefix(b, a)
}
