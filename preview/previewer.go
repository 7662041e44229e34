package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/source"
)

// Defaults for the zero values of Options.
const (
	DefaultInterval = time.Minute
	DefaultDebounce = time.Second
	DefaultParallel = 2
)

// StatusContext is the commit status a preview sets: baton/preview/<env>.
func StatusContext(env string) string { return "baton/preview/" + env }

// PullRequest is an open pull request as the previewer needs it.
type PullRequest struct {
	Number int
	// Head is the branch with the changes; HeadSHA its commit as the forge
	// last saw it.
	Head, HeadSHA string
	// Fork is set when Head is another repository's branch: previews do
	// not fetch strangers' branches or show them the live cluster.
	Fork bool
}

// Comment is a pull request comment and its id.
type Comment struct {
	ID   int64
	Body string
}

// Status is a commit status.
type Status struct {
	Context string
	// State is "pending", "success" or "failure".
	State       string
	Description string
}

// Forge is what the previewer asks of the forge hosting the repository.
type Forge interface {
	OpenPullRequests(ctx context.Context, base string) ([]PullRequest, error)
	Comments(ctx context.Context, number int) ([]Comment, error)
	// CreateComment adds a comment and returns its id.
	CreateComment(ctx context.Context, number int, body string) (int64, error)
	EditComment(ctx context.Context, number int, id int64, body string) error
	SetStatus(ctx context.Context, sha string, st Status) error
}

// Heads fetches the heads of pull request branches from git.
type Heads interface {
	// Head fetches branch and returns its head revision.
	Head(ctx context.Context, branch string) (*source.Revision, error)
	// Forget releases what Head keeps for branch.
	Forget(branch string)
}

// Environment is one environment whose branch gets previews.
type Environment struct {
	Name, Branch, Path string
}

// Clock tells time and waits; tests pass one they control.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RunRecord is one preview run, for logs and measurements.
type RunRecord struct {
	Environment string
	Number      int
	// Commit is the pull request head previewed.
	Commit string
	// Started is when the run began; Duration how long it took, from
	// fetching the head to the last status.
	Started  time.Time
	Duration time.Duration
	// APICalls counts the forge requests the run made.
	APICalls int
	// CommentBytes is the comment's size; CommentUpdated says whether it
	// was written (false when the comment already said the same).
	CommentBytes   int
	CommentUpdated bool
	// Passed is the status set: success or failure.
	Passed bool
	// Err is why the run did not complete (it is retried); nil otherwise.
	Err error
}

// Options configures a Previewer.
type Options struct {
	// Environments are the environments whose branches get previews.
	// Required.
	Environments []Environment
	// Forge lists pull requests, writes comments and sets statuses.
	// Required.
	Forge Forge
	// Heads fetches pull request heads. Required.
	Heads Heads
	// DryRun renders env at rev and dry-runs a sync of it: what the
	// environment's syncs would do (agent.DryRun). Required.
	DryRun func(ctx context.Context, env string, rev *source.Revision) (reconciler.Result, error)
	// Follows reports whether a webhook's repository URLs are this
	// repository's; nil accepts every event.
	Follows func(urls []string) bool
	// Interval is how often open pull requests are listed: the fallback
	// when no webhook arrives. Zero means DefaultInterval.
	Interval time.Duration
	// Debounce is the quiet time after a change before a preview runs, so
	// that a burst of pushes makes one run; zero means DefaultDebounce.
	Debounce time.Duration
	// Parallel bounds the runs at a time (each renders and dry-runs);
	// zero means DefaultParallel.
	Parallel int
	// MaxCommentBytes bounds a comment; zero means DefaultMaxCommentBytes.
	MaxCommentBytes int
	// OnRun is told of every finished run; it must not block. Nil: none.
	OnRun func(RunRecord)
	// Logger receives one line per run; nil discards.
	Logger *slog.Logger
	// Clock tells time; nil means the system clock.
	Clock Clock
}

// Previewer keeps one preview comment and one commit status per open pull
// request and environment current: it lists the open pull requests into
// each environment's branch (every Interval, and at once on a webhook),
// and runs a preview when a pull request is new, when its head moves, or
// when the live environment changes (LiveChanged: a sync of a new base
// commit, or a sync that changed or corrected objects). Changes are
// debounced; a run whose inputs change is cancelled and run again.
//
// Run it on the leader only; two previewers would both write (the
// comment is found by its marker, so they would not duplicate it, but
// they would do the work twice). Its methods are safe for concurrent use.
type Previewer struct {
	opts  Options
	log   *slog.Logger
	clock Clock
	envs  map[string]Environment

	events chan event
}

// event is a wake-up for the run loop.
type event struct {
	refresh string // list the open pull requests of this environment ("*": all)
	live    string // this environment's live state changed
	done    *runDone
}

// New checks the options and returns a Previewer.
func New(opts Options) (*Previewer, error) {
	if len(opts.Environments) == 0 || opts.Forge == nil || opts.Heads == nil || opts.DryRun == nil {
		return nil, errors.New("preview: Environments, Forge, Heads and DryRun are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	p := &Previewer{opts: opts, log: opts.Logger, clock: opts.Clock, envs: map[string]Environment{},
		events: make(chan event, 64)}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.clock == nil {
		p.clock = systemClock{}
	}
	for _, e := range opts.Environments {
		p.envs[e.Name] = e
	}
	return p, nil
}

// send queues an event without blocking: a full queue means the loop has
// plenty to do, and refreshes are repeated by the interval anyway.
func (p *Previewer) send(ev event) bool {
	select {
	case p.events <- ev:
		return true
	default:
		return false
	}
}

// PullRequestChanged takes a verified pull request webhook
// (source.PullRequestTarget): when it is about this repository and into
// a previewed branch, the open pull requests of that branch are listed at
// once.
func (p *Previewer) PullRequestChanged(ev source.PullRequestEvent) bool {
	if p.opts.Follows != nil && !p.opts.Follows(ev.URLs) {
		return false
	}
	taken := false
	for _, e := range p.opts.Environments {
		if e.Branch == ev.Base {
			p.send(event{refresh: e.Name})
			taken = true
		}
	}
	return taken
}

// LiveChanged says that env's live state changed: its previews run again.
func (p *Previewer) LiveChanged(env string) {
	if _, ok := p.envs[env]; ok {
		p.send(event{live: env})
	}
}

// key names one preview: an environment and a pull request.
type key struct {
	env    string
	number int
}

// inputs are what a preview depends on; a run is current when the inputs
// it ran with are still the wanted ones.
type inputs struct {
	head string // the pull request's head, as the forge lists it
	live uint64 // the environment's live generation
}

type job struct {
	key    key
	pr     PullRequest
	want   inputs
	done   inputs
	ran    bool      // a run completed (done is meaningful)
	due    time.Time // zero: nothing scheduled
	first  time.Time // first trigger since the last run started: bounds the debounce
	cancel context.CancelFunc
	runs   inputs // inputs of the run in flight
	fails  int
	// What the forge holds, remembered to save requests.
	commentID int64
	body      string
	statusSHA string // the commit the last final status was set on
	status    Status // that status
}

type runDone struct {
	key       key
	inputs    inputs
	comment   int64
	body      string
	statusSHA string
	status    Status
	err       error
}

// known is what the forge held after the last run: the comment, and the
// final status on the head it saw.
type known struct {
	commentID int64
	body      string
	statusSHA string
	status    Status
}

// Run previews until ctx ends. It lists every environment's pull requests
// at once, then at each interval and webhook.
func (p *Previewer) Run(ctx context.Context) error {
	jobs := map[key]*job{}
	live := map[string]uint64{}
	running := 0
	var wg sync.WaitGroup
	defer func() {
		for _, j := range jobs {
			if j.cancel != nil {
				j.cancel()
			}
		}
		wg.Wait()
	}()
	tick := p.clock.After(0)
	var timer <-chan time.Time
	for {
		var ev event
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			tick = p.clock.After(p.opts.Interval)
			ev.refresh = "*"
		case <-timer:
		case ev = <-p.events:
		}
		now := p.clock.Now()
		switch {
		case ev.refresh != "":
			for _, e := range p.opts.Environments {
				if ev.refresh == "*" || ev.refresh == e.Name {
					p.refresh(ctx, e, jobs, live, now)
				}
			}
		case ev.live != "":
			live[ev.live]++
			for _, j := range jobs {
				if j.key.env == ev.live {
					j.want.live = live[ev.live]
					p.schedule(j, now)
				}
			}
		case ev.done != nil:
			running--
			p.finish(jobs, ev.done, now)
		}
		// Start what is due, oldest first, within the bound.
		var next time.Time
		for _, j := range sortedJobs(jobs) {
			if j.due.IsZero() {
				continue
			}
			if j.cancel != nil && j.runs != j.want {
				j.cancel() // stale: its result would be overwritten
			}
			if j.due.After(now) || j.cancel != nil || running >= p.opts.Parallel {
				if next.IsZero() || j.due.Before(next) {
					next = j.due
				}
				continue
			}
			running++
			p.start(ctx, j, &wg)
		}
		timer = nil
		if !next.IsZero() {
			timer = p.clock.After(max(next.Sub(now), 10*time.Millisecond))
		}
	}
}

func sortedJobs(jobs map[key]*job) []*job {
	out := make([]*job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].key.env != out[b].key.env {
			return out[a].key.env < out[b].key.env
		}
		return out[a].key.number < out[b].key.number
	})
	return out
}

// schedule asks for a run after the debounce, and no later than ten
// debounces after the first of a burst of triggers.
func (p *Previewer) schedule(j *job, now time.Time) {
	if j.ran && j.done == j.want && j.cancel == nil {
		j.due, j.first = time.Time{}, time.Time{}
		return
	}
	if j.first.IsZero() {
		j.first = now
	}
	j.due = now.Add(p.opts.Debounce)
	if limit := j.first.Add(10 * p.opts.Debounce); j.due.After(limit) {
		j.due = limit
	}
}

// refresh lists env's open pull requests and updates the jobs: new ones
// and moved heads are scheduled, closed ones dropped.
func (p *Previewer) refresh(ctx context.Context, e Environment, jobs map[key]*job, live map[string]uint64, now time.Time) {
	prs, err := p.opts.Forge.OpenPullRequests(ctx, e.Branch)
	if err != nil {
		p.log.Warn("preview: list pull requests", "environment", e.Name, "branch", e.Branch, "error", err)
		return
	}
	open := map[int]bool{}
	for _, pr := range prs {
		if pr.Fork {
			p.log.Debug("preview: pull request from a fork is not previewed", "environment", e.Name, "number", pr.Number)
			continue
		}
		open[pr.Number] = true
		k := key{e.Name, pr.Number}
		j := jobs[k]
		if j == nil {
			j = &job{key: k}
			jobs[k] = j
		}
		j.pr = pr
		want := inputs{head: pr.HeadSHA, live: live[e.Name]}
		if want != j.want || !j.ran {
			j.want = want
			p.schedule(j, now)
		}
	}
	for k, j := range jobs {
		if k.env != e.Name || open[k.number] {
			continue
		}
		if j.cancel != nil {
			j.cancel()
		}
		delete(jobs, k)
		if !branchInUse(jobs, j.pr.Head) {
			p.opts.Heads.Forget(j.pr.Head)
		}
	}
}

func branchInUse(jobs map[key]*job, branch string) bool {
	for _, j := range jobs {
		if j.pr.Head == branch {
			return true
		}
	}
	return false
}

// start runs a preview of j in the background.
func (p *Previewer) start(ctx context.Context, j *job, wg *sync.WaitGroup) {
	runCtx, cancel := context.WithCancel(ctx)
	j.cancel, j.runs, j.due, j.first = cancel, j.want, time.Time{}, time.Time{}
	env, pr, in := p.envs[j.key.env], j.pr, j.want
	last := known{commentID: j.commentID, body: j.body, statusSHA: j.statusSHA, status: j.status}
	wg.Go(func() {
		defer cancel()
		d := p.preview(runCtx, env, pr, last)
		d.key, d.inputs = j.key, in
		// The loop may have stopped: never block on it.
		select {
		case p.events <- event{done: &d}:
		case <-ctx.Done():
		}
	})
}

// finish records a run's outcome on its job.
func (p *Previewer) finish(jobs map[key]*job, d *runDone, now time.Time) {
	j := jobs[d.key]
	if j == nil {
		return // the pull request closed meanwhile
	}
	j.cancel = nil
	if d.comment != 0 {
		j.commentID, j.body = d.comment, d.body
	}
	if d.statusSHA != "" {
		j.statusSHA, j.status = d.statusSHA, d.status
	}
	switch {
	case d.err == nil:
		j.done, j.ran, j.fails = d.inputs, true, 0
		if j.want != j.done {
			p.schedule(j, now)
		}
	case errors.Is(d.err, context.Canceled):
		if j.due.IsZero() {
			p.schedule(j, now)
		}
	default:
		// The forge or git failed: try again, later each time.
		j.fails++
		j.due = now.Add(min(time.Duration(1<<min(j.fails, 6))*p.opts.Debounce, p.opts.Interval))
		if d.comment == 0 {
			j.commentID = 0 // look the comment up again
		}
	}
}

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
