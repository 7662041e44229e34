package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

// DefaultMaxPacks is how many pack files a store may hold before it is
// compacted: each fetch adds one.
const DefaultMaxPacks = 16

// Options configures a Repository.
type Options struct {
	// CacheDir is the agent's cache folder (an emptyDir in the cluster).
	// The repository keeps its object store in a folder below it named after
	// a hash of the URL. Required. One Repository per URL may use a cache
	// folder at a time.
	CacheDir string
	// Logger receives warnings (such as a disabled host key check). Nil
	// discards them.
	Logger *slog.Logger
	// Metrics receives the duration and outcome of every git operation.
	// Nil records nothing.
	Metrics Metrics
	// Clock tells the time for commit signatures and durations. Nil means
	// the system clock.
	Clock Clock
	// MaxPacks bounds the pack files in the store before compaction; zero
	// means DefaultMaxPacks. Disk use stays below the live objects plus
	// MaxPacks fetches.
	MaxPacks int
	// MaxBlobSize bounds one object a fetch may bring: a pack holding a
	// larger one is refused (*BlobTooLargeError) before go-git, which holds
	// objects in memory while it indexes them, parses it; when several
	// branches moved, each is then fetched alone, so that only the branch
	// holding the object fails. Zero means DefaultMaxBlobSize; negative, no
	// bound.
	MaxBlobSize int64
}

// Repository follows branches of one remote git repository with go-git, in
// process, and writes commits to it. It keeps one shallow object store on
// disk shared by all its branches.
//
// Its methods are safe for concurrent use; git operations (Poll, Commit,
// Push) run one at a time. Revisions and Snapshots it returns stay valid
// after later operations.
type Repository struct {
	settings      RepositorySettings
	url           string // without credentials
	endpoint      *endpoint
	httpTransport transport.Transport // shared by operations for connection reuse; nil unless https
	log           *slog.Logger
	metrics       Metrics
	clock         Clock
	maxPacks      int
	maxBlob       int64
	gens          generations

	// mu serialises git operations and guards the fields below.
	mu       sync.Mutex
	store    *objectStore // current generation
	gen      int
	good     map[string]*Revision // last good revision per branch
	reported map[string]string    // commit of the revision last returned by Poll, per branch
	closed   bool
}

// NewRepository validates the settings and opens (or creates) the
// repository's object store under opts.CacheDir. It does not contact the
// remote: the first Poll does. Last good revisions found in the store from
// an earlier run are available at once through Revision.
func NewRepository(settings RepositorySettings, opts Options) (*Repository, error) {
	if err := settings.Validate(); err != nil {
		return nil, err
	}
	if opts.CacheDir == "" {
		return nil, fmt.Errorf("repository %s: Options.CacheDir is required", redactURL(settings.URL))
	}
	settings = settings.withDefaults()
	ep, err := parseURL(settings.URL)
	if err != nil {
		return nil, fmt.Errorf("repository %s: url: %w", redactURL(settings.URL), err)
	}
	r := &Repository{
		settings: settings,
		url:      redactURL(settings.URL),
		endpoint: ep,
		log:      opts.Logger,
		metrics:  opts.Metrics,
		clock:    opts.Clock,
		maxPacks: opts.MaxPacks,
		maxBlob:  opts.MaxBlobSize,
		gens:     generations{root: filepath.Join(opts.CacheDir, "repos", cacheKey(settings.URL))},
		good:     map[string]*Revision{},
		reported: map[string]string{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.metrics == nil {
		r.metrics = noMetrics{}
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	if r.maxBlob == 0 {
		r.maxBlob = DefaultMaxBlobSize
	}
	if r.maxPacks <= 0 {
		r.maxPacks = DefaultMaxPacks
	}
	if ep.kind == kindHTTP {
		if r.httpTransport, err = newHTTPTransport(settings); err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.url, err)
		}
	}
	if r.store, r.gen, err = r.gens.open(); err != nil {
		return nil, fmt.Errorf("repository %s: open cache: %w", r.url, err)
	}
	if err := r.loadLocked(); err != nil {
		return nil, fmt.Errorf("repository %s: read cache: %w", r.url, err)
	}
	return r, nil
}

// loadLocked restores the last good revisions from the store and drops
// commits an earlier run made but never pushed.
func (r *Repository) loadLocked() error {
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	refs, err := r.store.refsLocked()
	if err != nil {
		return err
	}
	for name := range refs {
		if strings.HasPrefix(name, pendingRefPrefix) {
			_ = r.store.removeRefLocked(name)
		}
	}
	for _, b := range r.settings.Branches {
		h, ok := refs[goodRefPrefix+b]
		if !ok {
			continue
		}
		c, err := r.store.commitLocked(h)
		if err != nil {
			continue // a damaged cache refetches
		}
		r.good[b] = newRevision(r.url, b, c, r.store, "")
	}
	return nil
}

// URL is the repository's URL without credentials.
func (r *Repository) URL() string { return r.url }

// Branches are the followed branches, in the settings' order.
func (r *Repository) Branches() []string {
	return append([]string(nil), r.settings.Branches...)
}

// Interval is the poll interval from the settings (defaults applied).
func (r *Repository) Interval() time.Duration { return r.settings.Interval.Duration }

// Revision returns the last good revision of branch, or nil if there is
// none yet.
func (r *Repository) Revision(branch string) *Revision {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.good[branch]
}

// Follows reports whether a push to branch of a repository known by any of
// urls concerns this repository: URLs are compared by host and path, so the
// HTTPS and SSH URLs of one repository both match.
func (r *Repository) Follows(urls []string, branch string) bool {
	if !r.followsBranch(branch) {
		return false
	}
	mine := NormalizeURL(r.settings.URL)
	for _, u := range urls {
		if n := NormalizeURL(u); n != "" && n == mine {
			return true
		}
	}
	return false
}

func (r *Repository) followsBranch(b string) bool {
	for _, f := range r.settings.Branches {
		if f == b {
			return true
		}
	}
	return false
}

// Close ends git operations on the repository and closes the files the
// store keeps open. The store stays on disk for the next run; Snapshots
// already handed out stay readable (they reopen what they need).
func (r *Repository) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.store.mu.Lock()
	defer r.store.mu.Unlock()
	return r.store.st.Close()
}

// wrap turns an operation's failure into an *Error with its kind and with
// secrets removed from the text.
func (r *Repository) wrap(ctx context.Context, op, branch string, err error, rem remote, red redactor) error {
	if err == nil {
		return nil
	}
	var typed *Error
	if errors.As(err, &typed) {
		return err
	}
	if errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
		return &Error{Op: op, Repository: r.url, Branch: branch, Err: context.Canceled}
	}
	kind := classify(ctx, err, rem != nil && rem.hostKeyFailed())
	cause := red.error(err)
	// go-git ends some messages with ": " and an empty server reason.
	if msg := strings.TrimSuffix(strings.TrimSpace(cause.Error()), ":"); msg != cause.Error() {
		cause = errors.New(msg)
	}
	if kind != nil {
		// Errors made here already start with the kind's text.
		if msg, ok := strings.CutPrefix(cause.Error(), kind.Error()+": "); ok {
			cause = errors.New(msg)
		}
	}
	return &Error{Op: op, Repository: r.url, Branch: branch, Kind: kind, Err: cause}
}

func (r *Repository) observe(op string, start time.Time, err error) {
	r.metrics.ObserveGitOperation(r.url, op, r.clock.Now().Sub(start), KindName(err))
}

// warnInsecure logs, at every operation, that host keys are not checked:
// the setting must not be forgotten once set.
func (r *Repository) warnInsecure() {
	if r.endpoint.kind == kindSSH && r.settings.InsecureSkipHostKeyCheck {
		r.log.Warn("SSH host key check is disabled: anyone on the network path can impersonate the server",
			"repository", r.url)
	}
}
