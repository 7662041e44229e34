package promote

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/baton-gitops/baton/source"
)

// RevertRequest asks for a rollback by hand (`baton rollback`): no gate,
// soak or health verdict is consulted, and the revert is written as the
// edge's policy says, as Rollback would.
type RevertRequest struct {
	// To, when set, is a commit (or a prefix of one) of the target
	// branch's first-parent line to go back to: the branch's tree becomes
	// To's, and every promotion of the edge after it is reverted (and
	// held). Empty reverts the last promotion of the edge in effect.
	To string
	// By and Reason say who asks and why; both are required and go into
	// the commit's Baton-Revert-Reason trailer.
	By, Reason string
}

// Revert reverts promotions of an edge on its target branch: the last one
// in effect, or all those after req.To. The revert commit says "This
// reverts commit <hash>." for each, so the reverted content is held (see
// Evaluate) exactly as after a revert by hand. On an auto edge the commit
// is pushed to the target branch; otherwise it is pushed to RevertBranch
// and proposed by pull request (without a Forge, CompareURL says where).
func (p *Promoter) Revert(ctx context.Context, e Edge, req RevertRequest) (Outcome, error) {
	edge, _, to, err := p.edge(e)
	if err != nil {
		return Outcome{}, err
	}
	if strings.TrimSpace(req.By) == "" || strings.TrimSpace(req.Reason) == "" {
		return Outcome{}, fmt.Errorf("revert %s: say who asks and why (RevertRequest.By and Reason)", edge.Name())
	}
	out := Outcome{Edge: edge.Name()}
	for attempt := 1; attempt <= p.opts.MaxAttempts; attempt++ {
		out.Attempts = attempt
		done, err := p.revertAttempt(ctx, edge, to, req, &out)
		if err != nil || done {
			return out, err
		}
	}
	return out, fmt.Errorf("revert %s: gave up after %d attempts: the branch moved every time", edge.Name(), p.opts.MaxAttempts)
}

// revertTarget is what a revert undoes: the tree to take paths from, the
// differences to restore, and the promotions it reverts (newest first).
type revertTarget struct {
	from     *source.Revision
	diffs    []fileDiff
	reverted []*promotion
	subject  string
}

func (p *Promoter) revertAttempt(ctx context.Context, edge Edge, to Environment, req RevertRequest, out *Outcome) (bool, error) {
	branch := RevertBranch(edge)
	heads, err := p.poll(ctx, to.Branch, branch, PromotionBranch(edge))
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	head := heads[to.Branch]
	if head == nil {
		return false, fmt.Errorf("revert %s: target branch %s does not exist", edge.Name(), to.Branch)
	}
	out.TargetHead = head.Commit
	// The promotion branch's head tells a squash-merged promotion.
	hist, err := p.history(ctx, edge, to, head, heads[PromotionBranch(edge)])
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	var t revertTarget
	if req.To == "" {
		t, err = lastPromotion(edge, to, head, hist)
	} else {
		t, err = backTo(edge, to, head, hist, req.To)
	}
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	out.SourceCommit = t.reverted[0].sourceCommit
	pl, err := planPromotion(planInput{diffs: t.diffs, promotable: func(string) bool { return true }})
	if err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	if pl.empty() {
		out.Result = Skipped
		return true, nil
	}
	out.Changes = pl.changes
	msg := manualRevertMessage(t, req)
	who := req.By
	event := func(commit string, pr int) {
		m := fmt.Sprintf("%s reverted %s on %s: %s", who, t.subject, edge.To, req.Reason)
		if pr != 0 {
			m = fmt.Sprintf("%s opened revert pull request #%d of %s on %s: %s", who, pr, t.subject, edge.To, req.Reason)
		}
		out.Events = append(out.Events, Event{Kind: EventReverted, Edge: edge.Name(), Who: who,
			SourceCommit: out.SourceCommit, TargetCommit: out.Commit, PullRequest: pr, When: p.clock.Now(), Message: m})
	}
	if edge.Policy == PolicyAuto {
		commit, err := p.commitPlan(ctx, to.Branch, head, t.from.Snapshot, pl, msg)
		if err != nil {
			return false, fmt.Errorf("revert %s: commit: %w", edge.Name(), err)
		}
		lost, err := p.push(ctx, to.Branch, commit, head.Commit)
		if err != nil || lost {
			return false, err
		}
		out.Result, out.Commit = Reverted, commit
		event(commit, 0)
		return true, nil
	}
	// The revert branch is rewritten from the current head each time: a
	// rollback by hand supersedes an older proposal.
	if bh := heads[branch]; bh != nil {
		if _, ok := reverts(bh.Message); !ok {
			return false, fmt.Errorf("revert %s: %s has commit %s by %s that Baton did not make; merge or delete that branch first",
				edge.Name(), branch, short(bh.Commit), bh.Author.Name)
		}
	}
	commit, err := p.commitPlan(ctx, branch, head, t.from.Snapshot, pl, msg)
	if err != nil {
		return false, fmt.Errorf("revert %s: commit: %w", edge.Name(), err)
	}
	old := ""
	if bh := heads[branch]; bh != nil {
		old = bh.Commit
	}
	lost, err := p.push(ctx, branch, commit, old)
	if err != nil || lost {
		return false, err
	}
	out.Commit = commit
	if p.opts.Forge == nil {
		out.Result, out.CompareURL = Reverted, p.compareURL(to.Branch, branch)
		event(commit, 0)
		return true, nil
	}
	title := fmt.Sprintf("Revert %s", t.subject)
	body := fmt.Sprintf("%s asks to roll %s back: %s.\n\nMerging this pull request reverts %s; the reverted content is then held (not promoted to %s again, only newer content).\n\n<!-- baton:revert %s %s -->\n",
		who, edge.To, req.Reason, t.subject, edge.To, edge.Name(), head.Commit)
	sub := Outcome{}
	if err := p.pullRequest(ctx, edge, branch, to.Branch, title, body, commit, true, &sub); err != nil {
		return false, fmt.Errorf("revert %s: %w", edge.Name(), err)
	}
	out.Result, out.PullRequest = Reverted, sub.PullRequest
	if sub.PullRequest != nil {
		event(commit, sub.PullRequest.Number)
	}
	return true, nil
}

// lastPromotion reverts the edge's last promotion in effect. When later
// commits followed it, only the paths it changed are restored, and a path
// a later commit changed too is refused: that needs a person (or --to).
func lastPromotion(edge Edge, to Environment, head *source.Revision, hist *historyCache) (revertTarget, error) {
	last := hist.h.last
	if last == nil {
		return revertTarget{}, fmt.Errorf("no promotion from %s is in effect on %s (within the history read): nothing to roll back", edge.From, to.Branch)
	}
	index := logIndex(hist.log)
	landed := last.landed
	if len(landed.Parents) == 0 || index[landed.Parents[0]] == nil {
		return revertTarget{}, fmt.Errorf("the parent of %s is not in the history read", short(landed.Commit))
	}
	parent := index[landed.Parents[0]]
	diffs, err := diffTrees(parent.Snapshot, landed.Snapshot)
	if err != nil {
		return revertTarget{}, err
	}
	if landed.Commit != head.Commit {
		later, err := diffTrees(landed.Snapshot, head.Snapshot)
		if err != nil {
			return revertTarget{}, err
		}
		changed := map[string]bool{}
		for _, d := range later {
			changed[d.path] = true
		}
		for _, d := range diffs {
			if changed[d.path] {
				return revertTarget{}, fmt.Errorf("%s, which the promotion %s changed, changed again after it on %s: roll back with --to a commit instead",
					d.path, short(landed.Commit), to.Branch)
			}
		}
	}
	return revertTarget{from: parent, diffs: diffs, reverted: []*promotion{last},
		subject: fmt.Sprintf("promotion of %s@%s (%s)", edge.From, short(last.sourceCommit), short(landed.Commit))}, nil
}

// backTo restores the tree of commit ref, reverting every promotion of the
// edge that landed after it on the first-parent line.
func backTo(edge Edge, to Environment, head *source.Revision, hist *historyCache, ref string) (revertTarget, error) {
	index := logIndex(hist.log)
	var reverted []*promotion
	for c := head; c != nil; {
		if strings.HasPrefix(c.Commit, ref) {
			if len(reverted) == 0 {
				return revertTarget{}, fmt.Errorf("no promotion from %s landed on %s after %s: nothing to roll back", edge.From, to.Branch, short(c.Commit))
			}
			diffs, err := diffTrees(c.Snapshot, head.Snapshot)
			if err != nil {
				return revertTarget{}, err
			}
			return revertTarget{from: c, diffs: diffs, reverted: reverted,
				subject: fmt.Sprintf("%s back to %s", to.Branch, short(c.Commit))}, nil
		}
		if pr := promotionAt(edge.From, c, index, hist.squashed); pr != nil {
			reverted = append(reverted, pr)
		}
		if len(c.Parents) == 0 {
			break
		}
		c = index[c.Parents[0]]
	}
	return revertTarget{}, fmt.Errorf("%s is not a commit of %s's first-parent line within the history read", ref, to.Branch)
}

func logIndex(log []*source.Revision) map[string]*source.Revision {
	index := make(map[string]*source.Revision, len(log))
	for _, r := range log {
		index[r.Commit] = r
	}
	return index
}

// manualRevertMessage is git's revert form, one "This reverts commit" line
// per reverted promotion, and who asked and why.
func manualRevertMessage(t revertTarget, req RevertRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Revert %s\n\n", t.subject)
	for _, pr := range t.reverted {
		fmt.Fprintf(&b, "This reverts commit %s.\n", pr.landed.Commit)
	}
	fmt.Fprintf(&b, "\n%s: rollback by %s: %s\n", TrailerRevertReason, oneLine(req.By), oneLine(req.Reason))
	return b.String()
}

var reRevertsAll = regexp.MustCompile(`(?m)^This reverts commit ([0-9a-f]{40})\b`)

// revertedCommits returns every commit a revert commit undoes: one for
// git revert, several for a rollback to an older commit.
func revertedCommits(message string) []string {
	var out []string
	for _, m := range reRevertsAll.FindAllStringSubmatch(message, -1) {
		out = append(out, m[1])
	}
	return out
}
