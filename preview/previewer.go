package preview

import (
	"context"
	"errors"
	"log/slog"
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
