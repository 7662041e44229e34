package promote

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/internal/markdown"
	"github.com/baton-gitops/baton/source"
)

// propose writes a pull-request edge's promotion to its promotion branch
// and opens or updates the pull request. The branch is rewritten (with a
// lease) whenever the promotion changes: the commit always sits on the
// target's current head, so the pull request merges without conflicts.
func (p *Promoter) propose(ctx context.Context, edge Edge, to Environment, st SourceState, target, branchHead *source.Revision, hist *historyCache, c computed, out *Outcome) (bool, error) {
	branch := PromotionBranch(edge)
	pushed := false
	commit := ""
	current, err := p.holdsPromotion(ctx, edge, branch, branchHead, target, c)
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	if current {
		commit = branchHead.Commit
	} else {
		if branchHead != nil {
			if _, _, ok := promotedFrom(branchHead); !ok {
				// Somebody added work to the branch: rewriting it would
				// lose that commit.
				out.Result = Blocked
				out.Blocker = &GateResult{Gate: GateBranch, Detail: fmt.Sprintf(
					"%s has commit %s by %s that Baton did not make; merge or delete the branch to let promotions continue",
					branch, githash.Short(branchHead.Commit), branchHead.Author.Name)}
				return true, nil
			}
		}
		if commit, err = p.promotionCommit(ctx, edge, branch, st, target, c, out.Gates); err != nil {
			return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
		}
		old := ""
		if branchHead != nil {
			old = branchHead.Commit
		}
		lost, err := p.push(ctx, branch, commit, old)
		if err != nil {
			return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
		}
		if lost {
			return false, nil
		}
		pushed = true
	}
	out.Commit = commit
	if p.opts.Forge == nil {
		out.Result = BranchPushed
		out.CompareURL = p.compareURL(to.Branch, branch)
		if pushed {
			out.Events = append(out.Events, Event{Kind: EventPullRequestOpened, Edge: edge.Name(), Who: p.opts.Author.Name,
				SourceCommit: c.src.Commit, TargetCommit: commit, When: p.clock.Now(),
				Message: fmt.Sprintf("pushed %s with the promotion of %s@%s; open a pull request at %s", branch, edge.From, githash.Short(c.src.Commit), out.CompareURL)})
		}
		return true, nil
	}
	title := fmt.Sprintf("%spromote %s@%s to %s", p.opts.Pipeline.label(), edge.From, githash.Short(c.src.Commit), edge.To)
	start := time.Now()
	body := p.body(ctx, edge, to, st, target, hist, c, out.Gates, commit)
	p.log.Debug("pull request body written", "edge", edge.Name(), "elapsed", time.Since(start))
	start = time.Now()
	err = p.pullRequest(ctx, edge, branch, to.Branch, target.Commit, title, body, commit, pushed, out)
	p.log.Debug("pull request settled", "edge", edge.Name(), "result", out.Result, "elapsed", time.Since(start))
	return true, err
}

// holdsPromotion reports whether the promotion branch's head already is
// the promotion of c onto target. Its trailer and parent say which
// promotion it claims to be; anyone who can push to the branch can write
// those, so its tree must also be exactly the tree Baton computes now. A
// head that claims the promotion but holds other content is rewritten
// (with a lease) like a stale one.
func (p *Promoter) holdsPromotion(ctx context.Context, edge Edge, branch string, head, target *source.Revision, c computed) (bool, error) {
	if !isPromotionOf(head, edge, c.src.Commit, target.Commit) {
		return false, nil
	}
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	verified := s.verified == head.Commit
	p.mu.Unlock()
	if verified {
		return true, nil
	}
	req, err := planRequest(branch, target, c.src.Snapshot, c.plan)
	if err != nil {
		return false, fmt.Errorf("compute the promotion tree: %w", err)
	}
	tree, err := p.opts.Repo.Tree(ctx, req)
	if err != nil {
		return false, fmt.Errorf("compute the promotion tree: %w", err)
	}
	if tree != head.Tree {
		p.log.Warn("promotion branch head claims this promotion but holds other content; rewriting it",
			"edge", edge.Name(), "branch", branch, "head", head.Commit, "tree", head.Tree, "want", tree)
		return false, nil
	}
	p.mu.Lock()
	s.verified = head.Commit
	p.mu.Unlock()
	return true, nil
}

// pullRequest opens the edge's pull request or updates the open one, and
// closes duplicates: two promoters racing may both open one, and the
// oldest wins.
func (p *Promoter) pullRequest(ctx context.Context, edge Edge, head, base, target, title, body, commit string, pushed bool, out *Outcome) error {
	f := p.opts.Forge
	open, err := f.PullRequests(ctx, head, base, "open")
	if err != nil {
		return fmt.Errorf("promote %s: list pull requests: %w", edge.Name(), err)
	}
	event := func(kind EventKind, pr PullRequest, verb string) {
		out.Events = append(out.Events, Event{Kind: kind, Edge: edge.Name(), Who: p.opts.Author.Name,
			SourceCommit: out.SourceCommit, TargetCommit: commit, PullRequest: pr.Number, When: p.clock.Now(),
			Message: fmt.Sprintf("%s pull request #%d: %s", verb, pr.Number, title)})
	}
	if len(open) == 0 {
		if !pushed {
			// The branch is current but no pull request is open: one
			// closed unmerged with this very commit was declined.
			closed, err := f.PullRequests(ctx, head, base, "closed")
			if err != nil {
				return fmt.Errorf("promote %s: list pull requests: %w", edge.Name(), err)
			}
			for _, pr := range closed {
				switch {
				case pr.Merged && pr.HeadSHA == commit && pr.MergeCommit != target:
					// Merged a moment ago: the target's head read before
					// the merge is behind, and a new pull request for this
					// very commit would be a duplicate of a landed one.
					// (When the head read is the merge itself, the merge is
					// an older promotion's and the branch was reused.)
					out.Result, out.PullRequest = Skipped, &pr
					return nil
				case !pr.Merged && pr.HeadSHA == commit:
					out.Result = Blocked
					out.Blocker = &GateResult{Gate: GateClosed, Detail: fmt.Sprintf(
						"pull request #%d with this promotion was closed without merging; Baton proposes again when %s moves or a newer commit passes",
						pr.Number, base)}
					return nil
				}
			}
		}
		pr, err := f.CreatePullRequest(ctx, NewPullRequest{Head: head, Base: base, Title: title, Body: body})
		switch {
		case err == nil:
			out.Result, out.PullRequest = PullRequestOpened, &pr
			if err := p.dedupe(ctx, edge, head, base, out); err != nil {
				return err
			}
			if out.Result == PullRequestOpened {
				event(EventPullRequestOpened, pr, "opened")
			}
			return nil
		case errors.Is(err, ErrPullRequestExists):
			// Another promoter opened it a moment ago.
			if open, err = f.PullRequests(ctx, head, base, "open"); err != nil {
				return fmt.Errorf("promote %s: list pull requests: %w", edge.Name(), err)
			}
			if len(open) == 0 {
				return fmt.Errorf("promote %s: the forge says a pull request from %s exists but lists none open", edge.Name(), head)
			}
		default:
			return fmt.Errorf("promote %s: open pull request: %w", edge.Name(), err)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Number < open[j].Number })
	pr := open[0]
	if err := p.closeDuplicates(ctx, open); err != nil {
		return fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	if !pushed && pr.Title == title {
		out.Result, out.PullRequest = PullRequestCurrent, &pr
		return nil
	}
	updated, err := f.EditPullRequest(ctx, pr.Number, title, body)
	if err != nil {
		return fmt.Errorf("promote %s: update pull request #%d: %w", edge.Name(), pr.Number, err)
	}
	out.Result, out.PullRequest = PullRequestUpdated, &updated
	event(EventPullRequestUpdated, updated, "updated")
	return nil
}

// closeObsolete closes the edge's open promotion pull requests once the
// target already has the source's promotable content (target is its head):
// a promotion proposed on a target head read just before another one was
// merged proposes nothing any more. It asks the forge once per target head.
func (p *Promoter) closeObsolete(ctx context.Context, edge Edge, to Environment, target *source.Revision) error {
	f := p.opts.Forge
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	done := s.upToDate == target.Commit
	p.mu.Unlock()
	if f == nil || done {
		return nil
	}
	open, err := f.PullRequests(ctx, PromotionBranch(edge), to.Branch, "open")
	if err != nil {
		return fmt.Errorf("list pull requests: %w", err)
	}
	for _, pr := range open {
		_ = f.Comment(ctx, pr.Number, fmt.Sprintf("%s already has this content (at `%s`): nothing is left to promote; closing.", to.Branch, githash.Short(target.Commit)))
		if err := f.ClosePullRequest(ctx, pr.Number); err != nil && p.stillOpen(ctx, pr) {
			return fmt.Errorf("close pull request #%d, which proposes nothing any more: %w", pr.Number, err)
		}
	}
	p.mu.Lock()
	s.upToDate = target.Commit
	p.mu.Unlock()
	return nil
}

// dedupe settles a race after this promoter opened a pull request: when
// two promoters both opened one, the oldest open one is kept by both and
// the others are closed.
func (p *Promoter) dedupe(ctx context.Context, edge Edge, head, base string, out *Outcome) error {
	open, err := p.opts.Forge.PullRequests(ctx, head, base, "open")
	if err != nil {
		return fmt.Errorf("promote %s: list pull requests: %w", edge.Name(), err)
	}
	if len(open) == 0 {
		return nil
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Number < open[j].Number })
	if keep := open[0]; keep.Number != out.PullRequest.Number {
		out.PullRequest, out.Result = &keep, PullRequestCurrent
	}
	if err := p.closeDuplicates(ctx, open); err != nil {
		return fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	return nil
}

// closeDuplicates closes every pull request but the first (the oldest).
// The other promoter of the race closes the same ones, so a close that
// fails is fine when the pull request is no longer open (Gitea refuses the
// second of two concurrent changes: "the issue is already changed").
func (p *Promoter) closeDuplicates(ctx context.Context, open []PullRequest) error {
	for _, dup := range open[1:] {
		_ = p.opts.Forge.Comment(ctx, dup.Number, fmt.Sprintf("Duplicate of #%d (two promoters raced); closing.", open[0].Number))
		if err := p.opts.Forge.ClosePullRequest(ctx, dup.Number); err != nil && p.stillOpen(ctx, dup) {
			return fmt.Errorf("close duplicate pull request #%d: %w", dup.Number, err)
		}
	}
	return nil
}

// stillOpen reports whether pr is still among the open pull requests of
// its branches; when the forge cannot say, it is taken to be open.
func (p *Promoter) stillOpen(ctx context.Context, pr PullRequest) bool {
	open, err := p.opts.Forge.PullRequests(ctx, pr.Head, pr.Base, "open")
	if err != nil {
		return true
	}
	for _, o := range open {
		if o.Number == pr.Number {
			return true
		}
	}
	return false
}

func (p *Promoter) compareURL(base, head string) string {
	if p.opts.CompareURL == "" {
		return ""
	}
	return strings.NewReplacer("{base}", base, "{head}", head).Replace(p.opts.CompareURL)
}

// maxBodyCommits bounds the commits a pull request body lists.
const maxBodyCommits = 30

// body writes the pull request description: the source commit, the
// commits the promotion brings, the gates, and the changed files.
func (p *Promoter) body(ctx context.Context, edge Edge, to Environment, st SourceState, target *source.Revision, hist *historyCache, c computed, gates []GateResult, commit string) string {
	var b strings.Builder
	src := c.src
	fmt.Fprintf(&b, "Promotes **%s@%s** to **%s** (`%s`), on top of `%s`.\n\n", edge.From, githash.Short(src.Commit), edge.To, to.Branch, githash.Short(target.Commit))
	if l := p.opts.Pipeline.label(); l != "" {
		// A validated DNS label: nothing in it formats or mentions.
		fmt.Fprintf(&b, "Pipeline: **%s**\n\n", p.opts.Pipeline.Name)
	}
	// Everything read from commits (subjects, names, paths, tags) goes
	// through markdown.Code: anyone who can push to the source branch
	// writes it, and it must not mention, link or format anything.
	fmt.Fprintf(&b, "Source commit: `%s` %s (%s)\n\n", src.Commit, markdown.Code(src.Subject()), markdown.Code(src.Author.Name))

	b.WriteString("### Commits\n\n")
	b.WriteString(p.commitList(ctx, edge, hist, src))

	b.WriteString("\n### Health and gates\n\n")
	if !st.HealthySince.IsZero() {
		fmt.Fprintf(&b, "- %s healthy since %s\n", edge.From, st.HealthySince.UTC().Format("2006-01-02T15:04:05Z07:00"))
	}
	for _, g := range gates {
		mark := "passed"
		if !g.Passed {
			mark = "FAILED"
		}
		fmt.Fprintf(&b, "- %s %s: %s\n", g.Gate, mark, markdown.Code(g.Detail))
	}

	b.WriteString("\n### Changed files\n\n")
	for _, ch := range c.plan.changes {
		fmt.Fprintf(&b, "- %s %s\n", ch.Kind, markdown.Code(ch.Path))
	}
	for _, im := range c.plan.images {
		fmt.Fprintf(&b, "- image %s: %s → %s\n", markdown.Code(im.Name), markdown.Code(im.From), markdown.Code(im.To))
	}
	fmt.Fprintf(&b, "\nPromotion commit `%s`. Merging this pull request promotes; reverting the merge on `%s` rolls back and holds this content.\n",
		githash.Short(commit), to.Branch)
	fmt.Fprintf(&b, "\n%s\n", promotionMarker(edge, src.Commit, c.key))
	return b.String()
}

// commitList lists the source commits between what the target last got
// and the promoted commit, when the history allows.
func (p *Promoter) commitList(ctx context.Context, edge Edge, hist *historyCache, src *source.Revision) string {
	since := p.clock.Now().Add(-p.opts.HistoryWindow)
	prev := ""
	if last := hist.h.last; last != nil {
		prev = last.sourceCommit
		// The previous source commit is older than the promotion commit
		// that carried it, give or take clock skew.
		since = last.commit.Time.Add(-clockSkew)
	}
	log, err := p.opts.Repo.Log(ctx, source.LogRequest{Commit: src.Commit, Since: since, Max: 200})
	if err != nil {
		return fmt.Sprintf("(the commit list is not available: %s)\n", markdown.Code(err.Error()))
	}
	list, complete := commitsBetween(log, prev, src.Commit)
	var b strings.Builder
	if prev == "" {
		fmt.Fprintf(&b, "No earlier promotion from %s found; the latest commits:\n\n", edge.From)
	} else if !complete {
		fmt.Fprintf(&b, "Since %s@%s (not all history was available):\n\n", edge.From, githash.Short(prev))
	} else {
		fmt.Fprintf(&b, "Since %s@%s:\n\n", edge.From, githash.Short(prev))
	}
	for i, r := range list {
		if i == maxBodyCommits {
			fmt.Fprintf(&b, "- … and %d more\n", len(list)-i)
			break
		}
		fmt.Fprintf(&b, "- `%s` %s (%s)\n", githash.Short(r.Commit), markdown.Code(r.Subject()), markdown.Code(r.Author.Name))
	}
	return b.String()
}
