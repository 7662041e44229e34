package promote

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/baton-gitops/baton/source"
)

// commitPlan makes a commit on parent with the plan applied, reading
// copied files from tree.
func (p *Promoter) commitPlan(ctx context.Context, branch string, parent *source.Revision, tree Tree, pl plan, message string) (string, error) {
	req, err := planRequest(branch, parent, tree, pl)
	if err != nil {
		return "", err
	}
	author := p.opts.Author
	author.When = p.clock.Now()
	req.Author, req.Message, req.Signer = author, message, p.opts.Signer
	return p.opts.Repo.Commit(ctx, req)
}

// planRequest is the commit request of the plan on parent, without
// author and message: the edits alone, which fix the commit's tree.
func planRequest(branch string, parent *source.Revision, tree Tree, pl plan) (source.CommitRequest, error) {
	files := make(map[string][]byte, len(pl.copy)+len(pl.edits))
	for _, path := range pl.copy {
		b, err := tree.ReadFile(path)
		if err != nil {
			return source.CommitRequest{}, fmt.Errorf("read %s: %w", path, err)
		}
		files[path] = b
	}
	for path, b := range pl.edits {
		files[path] = b
	}
	return source.CommitRequest{Branch: branch, Parent: parent.Commit, Files: files, Delete: pl.delete}, nil
}

// push pushes commit to branch with a lease on old. lost reports a lease
// lost to a concurrent writer (recompute and retry); other failures are
// errors.
func (p *Promoter) push(ctx context.Context, branch, commit, old string) (lost bool, err error) {
	start := time.Now()
	err = p.opts.Repo.Push(ctx, source.PushRequest{Branch: branch, Commit: commit, ExpectedOld: old})
	p.log.Debug("pushed", "branch", branch, "commit", short(commit), "elapsed", time.Since(start), "error", err)
	if err == nil || errors.Is(err, source.ErrLeaseLost) {
		return err != nil, nil
	}
	// git receive-pack reports a compare-and-swap that failed under the
	// ref lock only as "failed to update ref", which reads like any other
	// failure: ask where the branch is now.
	heads, perr := p.poll(ctx, branch)
	if perr != nil {
		return false, err
	}
	cur := ""
	if h := heads[branch]; h != nil {
		cur = h.Commit
	}
	switch cur {
	case commit:
		return false, nil // it did land
	case old:
		return false, err
	}
	p.log.Debug("push failed and the branch moved: treating it as a lost lease", "branch", branch, "error", err)
	return true, nil
}

// promotionCommit makes the promotion commit of c on target.
func (p *Promoter) promotionCommit(ctx context.Context, edge Edge, branch string, st SourceState, target *source.Revision, c computed, gates []GateResult) (string, error) {
	msg := promotionMessage(edge, c.src.Commit, st.HealthySince, gates, c.key, st.Override)
	commit, err := p.commitPlan(ctx, branch, target, c.src.Snapshot, c.plan, msg)
	if err != nil {
		return "", fmt.Errorf("commit promotion of %s@%s onto %s: %w", edge.From, short(c.src.Commit), short(target.Commit), err)
	}
	return commit, nil
}

// pushTarget writes an auto edge's promotion straight to the target
// branch, with a lease on the head it was computed on.
func (p *Promoter) pushTarget(ctx context.Context, edge Edge, st SourceState, target *source.Revision, c computed, out *Outcome) (bool, error) {
	commit, err := p.promotionCommit(ctx, edge, target.Branch, st, target, c, out.Gates)
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	lost, err := p.push(ctx, target.Branch, commit, target.Commit)
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	if lost {
		return false, nil
	}
	out.Result, out.Commit = Promoted, commit
	msg := fmt.Sprintf("promoted %s@%s to %s (%s)", edge.From, short(c.src.Commit), edge.To, target.Branch)
	if o := st.Override; o != nil {
		msg += fmt.Sprintf("; gates overridden by %s: %s", oneLine(o.By), oneLine(o.Reason))
	}
	out.Events = append(out.Events, Event{
		Kind: EventPromoted, Edge: edge.Name(), Who: p.opts.Author.Name,
		SourceCommit: c.src.Commit, TargetCommit: commit, When: p.clock.Now(), Message: msg,
	})
	return true, nil
}

// isPromotionOf reports whether a promotion branch's head already carries
// the promotion of sourceCommit onto target.
func isPromotionOf(head *source.Revision, edge Edge, sourceCommit, target string) bool {
	if head == nil || len(head.Parents) != 1 || head.Parents[0] != target {
		return false
	}
	env, commit, ok := promotedFrom(head)
	return ok && env == edge.From && commit == sourceCommit
}
