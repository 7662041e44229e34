package preview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// countingForge counts a run's forge requests.
type countingForge struct {
	Forge
	mu    sync.Mutex // guards calls
	calls int
}

func (c *countingForge) count() {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
}

func (c *countingForge) Comments(ctx context.Context, n int) ([]Comment, error) {
	c.count()
	return c.Forge.Comments(ctx, n)
}

func (c *countingForge) CreateComment(ctx context.Context, n int, body string) (int64, error) {
	c.count()
	return c.Forge.CreateComment(ctx, n, body)
}

func (c *countingForge) EditComment(ctx context.Context, n int, id int64, body string) error {
	c.count()
	return c.Forge.EditComment(ctx, n, id, body)
}

func (c *countingForge) SetStatus(ctx context.Context, sha string, st Status) error {
	c.count()
	return c.Forge.SetStatus(ctx, sha, st)
}

// preview runs one preview: fetch the head, mark a new head pending,
// dry-run, write the comment (in place), set the status. A run again on
// the same head (the live environment changed) that comes to the same
// verdict writes nothing: a forge keeps a bounded number of statuses per
// commit (GitHub: 1000), and an environment that corrects drift every
// minute must not use them up.
func (p *Previewer) preview(ctx context.Context, env Environment, pr PullRequest, last known) runDone {
	started := p.clock.Now()
	f := &countingForge{Forge: p.opts.Forge}
	rec := RunRecord{Environment: env.Name, Number: pr.Number, Started: started}
	d := runDone{comment: last.commentID, body: last.body}
	defer func() {
		rec.Duration, rec.APICalls, rec.Err = p.clock.Now().Sub(started), f.calls, d.err
		if p.opts.OnRun != nil {
			p.opts.OnRun(rec)
		}
		attrs := []any{"environment", env.Name, "number", pr.Number, "commit", short(rec.Commit),
			"passed", rec.Passed, "apiCalls", rec.APICalls, "commentBytes", rec.CommentBytes, "duration", rec.Duration.Round(time.Millisecond).String()}
		switch {
		case d.err == nil:
			p.log.Info("preview", attrs...)
		case !errors.Is(d.err, context.Canceled):
			p.log.Warn("preview failed; retrying", append(attrs, "error", d.err.Error())...)
		}
	}()
	rev, err := p.opts.Heads.Head(ctx, pr.Head)
	if err != nil {
		d.err = fmt.Errorf("fetch %s: %w", pr.Head, err)
		return d
	}
	rec.Commit = rev.Commit
	statusContext := StatusContext(env.Name)
	newHead := rev.Commit != last.statusSHA
	if newHead {
		if err := f.SetStatus(ctx, rev.Commit, Status{Context: statusContext, State: "pending",
			Description: fmt.Sprintf("comparing %s with the live %s environment", short(rev.Commit), env.Name)}); err != nil {
			d.err = err
			return d
		}
	}
	res, runErr := p.opts.DryRun(ctx, env.Name, rev)
	if ctx.Err() != nil {
		d.err = ctx.Err()
		return d
	}
	report := NewReport(env.Name, rev.Commit, pr.Head, env.Path, res, runErr)
	body := report.Comment(p.opts.MaxCommentBytes)
	rec.CommentBytes, rec.Passed = len(body), report.Passed()
	if d.comment, err = p.writeComment(ctx, f, pr.Number, env.Name, last.commentID, last.body, body); err != nil {
		d.err = err
		return d
	}
	rec.CommentUpdated = body != last.body
	d.body = body
	st := Status{Context: statusContext, State: "success", Description: report.Summary()}
	if !report.Passed() {
		st.State, st.Description = "failure", report.Reason()
	}
	if newHead || st != last.status {
		if d.err = f.SetStatus(ctx, rev.Commit, st); d.err != nil {
			return d
		}
	}
	d.statusSHA, d.status = rev.Commit, st
	return d
}

// writeComment updates the environment's comment in place, or creates it.
// The comment is found by its marker (the id is remembered between runs);
// an unchanged body is not written again. It returns the comment's id.
func (p *Previewer) writeComment(ctx context.Context, f Forge, number int, env string, id int64, last, body string) (int64, error) {
	if id != 0 && last == body {
		return id, nil
	}
	if id == 0 {
		comments, err := f.Comments(ctx, number)
		if err != nil {
			return 0, err
		}
		marker := Marker(env)
		for _, c := range comments {
			if strings.Contains(c.Body, marker) {
				id, last = c.ID, c.Body
				break // the oldest one: the comment
			}
		}
	}
	switch {
	case id != 0 && last == body:
		return id, nil
	case id != 0:
		return id, f.EditComment(ctx, number, id, body)
	}
	return f.CreateComment(ctx, number, body)
}
