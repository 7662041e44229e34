package promote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/baton-gitops/baton/source"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxAttempts   = 5
	DefaultHistoryWindow = 30 * 24 * time.Hour
)

// Repo is the git access the promoter needs; *source.Repository is one.
// It must follow Pipeline.Branches() and be the promoter's own (see
// Pipeline.Branches).
type Repo interface {
	// Poll fetches the followed branches' heads.
	Poll(ctx context.Context) (source.PollResult, error)
	// Log returns a commit's recent history, newest first.
	Log(ctx context.Context, req source.LogRequest) ([]*source.Revision, error)
	// Commit makes a commit in the local store.
	Commit(ctx context.Context, req source.CommitRequest) (string, error)
	// Tree returns the root tree Commit(req) would record, without making
	// the commit.
	Tree(ctx context.Context, req source.CommitRequest) (string, error)
	// Push moves a remote branch if it is where the caller expects; a
	// moved branch fails with an error matching source.ErrLeaseLost.
	Push(ctx context.Context, req source.PushRequest) error
}

// Clock tells the time; tests pass one they control, so that the soak
// passes without waiting.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Options configures a Promoter.
type Options struct {
	// Pipeline is the environments and edges. Required.
	Pipeline Pipeline
	// Repo reads and writes the repository. Required.
	Repo Repo
	// Forge opens pull requests; nil means provider-less mode: the
	// promotion branch is pushed and CompareURL says where to open the
	// pull request by hand.
	Forge Forge
	// CompareURL is the forge's compare page with {base} and {head} in
	// place of the branches, e.g.
	// "https://github.com/acme/deploy/compare/{base}...{head}". Optional.
	CompareURL string
	// Querier evaluates query gates; required when an edge has some.
	Querier Querier
	// Author is the bot identity of promotion and revert commits; name
	// and email are required.
	Author source.Signature
	// Clock tells the time for soaks and commit dates; nil means the
	// system clock.
	Clock Clock
	// Logger receives debug detail; outcomes are returned, not logged.
	// Nil discards.
	Logger *slog.Logger
	// MaxAttempts bounds how often a promotion is recomputed and pushed
	// when concurrent writers move the branch first; zero means
	// DefaultMaxAttempts.
	MaxAttempts int
	// Signer, when set, signs every commit the promoter writes (promotions
	// and reverts), e.g. a source.OpenPGPSigner; nil leaves them unsigned.
	Signer source.Signer
	// HistoryWindow bounds how far back the target branch's history is
	// read for the last promotion and for reverts; zero means
	// DefaultHistoryWindow. A revert older than that no longer holds.
	HistoryWindow time.Duration
	// Journal keeps which promotion of each edge was last reported as
	// landed, across restarts and replicas; nil keeps it in memory, and
	// then a promotion merged before the promoter started is never
	// reported.
	Journal Journal
}

// Journal remembers, outside the process, the last promotion of each edge
// that the promoter reported as landed (the agent keeps it in a ConfigMap).
// Its methods must be safe for concurrent use.
type Journal interface {
	// Landed returns the target commit last recorded for the edge ("" when
	// no promotion was in effect); found is false when nothing was ever
	// recorded.
	Landed(ctx context.Context, edge string) (commit string, found bool, err error)
	// RecordLanded records the target commit of the edge's promotion in
	// effect ("" for none).
	RecordLanded(ctx context.Context, edge, commit string) error
}

// Promoter evaluates pipeline edges and writes promotions. Its methods
// are safe for concurrent use; it keeps in memory which audit events it
// reported and whether it commented on a freeze, and in Options.Journal,
// when set, which landed promotions it reported. It runs
// nothing in the background: the agent calls Evaluate (on the leader
// only) after every sync or health change and on a timer.
type Promoter struct {
	opts     Options
	edges    map[string]Edge
	matcher  matcher
	clock    Clock
	log      *slog.Logger
	started  time.Time
	keyCache keyCache

	mu    sync.Mutex // guards state
	state map[string]*edgeState
}

// edgeState is what the promoter remembers about an edge between
// evaluations, to report each event once.
type edgeState struct {
	frozen       bool
	frozenCommit string
	commented    bool   // freeze comment made (or found) for this freeze
	held         string // source commit last reported as held
	landed       string // target commit of the last promotion in effect, as reported
	landedKnown  bool   // landed was read or set (the journal need not be asked again)
	reverted     string // target head last reverted by Rollback
	verified     string // promotion branch head whose tree was found to be the computed one
	// upToDate is the target head on which no promotion pull request was
	// left open (see closeObsolete).
	upToDate string
	history  *historyCache
}

type historyCache struct {
	head string
	log  []*source.Revision
	// squashed are the squash-merged promotions recognised in log.
	squashed map[string]*promotion
	h        targetHistory
}

// New validates the options and returns a Promoter.
func New(opts Options) (*Promoter, error) {
	if err := opts.Pipeline.Validate(); err != nil {
		return nil, err
	}
	if opts.Repo == nil {
		return nil, errors.New("promote: Options.Repo is required")
	}
	if opts.Author.Name == "" || opts.Author.Email == "" {
		return nil, errors.New("promote: Options.Author needs a name and an email")
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.HistoryWindow <= 0 {
		opts.HistoryWindow = DefaultHistoryWindow
	}
	p := &Promoter{
		opts:    opts,
		edges:   map[string]Edge{},
		matcher: newMatcher(opts.Pipeline),
		clock:   opts.Clock,
		log:     opts.Logger,
		state:   map[string]*edgeState{},
	}
	if p.clock == nil {
		p.clock = systemClock{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for _, e := range opts.Pipeline.edges() {
		if len(e.Queries) > 0 && opts.Querier == nil {
			return nil, fmt.Errorf("promote: edge %s has query gates but Options.Querier is nil", e.Name())
		}
		p.edges[e.Name()] = e
	}
	p.started = p.clock.Now()
	return p, nil
}

// Edges returns the pipeline's edges with defaults applied, in order.
func (p *Promoter) Edges() []Edge { return p.opts.Pipeline.edges() }

// edge finds the configured edge and its environments.
func (p *Promoter) edge(e Edge) (Edge, Environment, Environment, error) {
	edge, ok := p.edges[e.Name()]
	if !ok {
		return Edge{}, Environment{}, Environment{}, fmt.Errorf("promote: edge %s is not in the pipeline", e.Name())
	}
	from, _ := p.opts.Pipeline.environment(edge.From)
	to, _ := p.opts.Pipeline.environment(edge.To)
	return edge, from, to, nil
}

func (p *Promoter) edgeState(name string) *edgeState {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state[name]
	if s == nil {
		s = &edgeState{}
		p.state[name] = s
	}
	return s
}

// Evaluate decides and acts on one edge given its source environment's
// state: frozen when the source is unhealthy, blocked until the gates
// pass, then the promotion commit is computed on the target's head and
// pushed (auto) or proposed by pull request. It returns what it did; an
// error means it could not decide or act (the next call tries again).
func (p *Promoter) Evaluate(ctx context.Context, e Edge, st SourceState) (Outcome, error) {
	edge, from, to, err := p.edge(e)
	if err != nil {
		return Outcome{}, err
	}
	out := Outcome{Edge: edge.Name()}
	if st.Revision != nil {
		out.SourceCommit = st.Revision.Commit
	}
	if st.Override != nil {
		if err := st.Override.validate(); err != nil {
			return out, fmt.Errorf("promote %s: %w", edge.Name(), err)
		}
	}
	if st.Frozen || (st.Revision != nil && !st.Healthy) {
		return p.freeze(ctx, edge, to, st, out)
	}
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	if s.frozen {
		s.frozen, s.commented = false, false
		out.Events = append(out.Events, Event{Kind: EventUnfrozen, Edge: edge.Name(), SourceCommit: out.SourceCommit,
			When: p.clock.Now(), Message: fmt.Sprintf("%s is healthy again: promotions to %s resume", edge.From, edge.To)})
	}
	p.mu.Unlock()

	gates, passed, retry := checkGates(ctx, edge, st, p.clock.Now(), p.opts.Querier)
	out.Gates = gates
	if !passed {
		out.Result, out.Retry = Blocked, retry
		out.Blocker = firstFailed(gates)
		return out, nil
	}
	if st.Revision.Snapshot == nil {
		return out, fmt.Errorf("promote %s: source revision %s@%s has no snapshot", edge.Name(), edge.From, short(st.Revision.Commit))
	}
	for attempt := 1; attempt <= p.opts.MaxAttempts; attempt++ {
		out.Attempts = attempt
		done, err := p.attempt(ctx, edge, from, to, st, &out)
		if err != nil || done {
			return out, err
		}
		p.log.Debug("promotion push lost its lease; recomputing", "edge", edge.Name(), "attempt", attempt)
	}
	return out, fmt.Errorf("promote %s: gave up after %d attempts: the branch moved every time", edge.Name(), p.opts.MaxAttempts)
}

// attempt reads the branches' heads, recomputes the promotion and writes
// it. done is false when a push lost its lease and the caller should try
// again on the new heads.
func (p *Promoter) attempt(ctx context.Context, edge Edge, from, to Environment, st SourceState, out *Outcome) (done bool, err error) {
	heads, err := p.poll(ctx, to.Branch, PromotionBranch(edge))
	if errors.Is(err, source.ErrSignatureInvalid) {
		// The target's head fails its branch's signature policy: building
		// on it (or on the last good head, which the branch has left)
		// would carry that commit into a promotion Baton signs.
		out.Result = Blocked
		out.Blocker = &GateResult{Gate: GateSignature, Detail: fmt.Sprintf(
			"the head of %s fails its signature policy, so no promotion is built on it: %v", to.Branch, err)}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	target := heads[to.Branch]
	if target == nil {
		return false, fmt.Errorf("promote %s: target branch %s does not exist", edge.Name(), to.Branch)
	}
	out.TargetHead = target.Commit
	start := time.Now()
	hist, err := p.history(ctx, edge, to, target, heads[PromotionBranch(edge)])
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	out.Events = append(out.Events, p.mergedEvents(ctx, edge, to, hist)...)

	c, err := p.compute(edge, from, to, st.Revision, target)
	if err != nil {
		return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
	}
	out.Changes, out.Images = c.plan.changes, c.plan.images
	p.log.Debug("promotion computed", "edge", edge.Name(), "source", short(st.Revision.Commit), "target", short(target.Commit),
		"changes", len(c.plan.changes), "elapsed", time.Since(start))
	if c.plan.empty() {
		out.Result = Skipped
		if edge.Policy == PolicyPullRequest {
			if err := p.closeObsolete(ctx, edge, to, target); err != nil {
				return false, fmt.Errorf("promote %s: %w", edge.Name(), err)
			}
		}
		return true, nil
	}
	if h := heldBy(hist, st.Revision.Commit, c.key); h != nil {
		out.Result = Held
		out.Blocker = &GateResult{Gate: "held", Detail: holdDetail(edge, *h)}
		out.Events = append(out.Events, p.heldEvent(edge, st.Revision.Commit, *h)...)
		return true, nil
	}
	if edge.Policy == PolicyAuto {
		return p.pushTarget(ctx, edge, st, target, c, out)
	}
	return p.propose(ctx, edge, to, st, target, heads[PromotionBranch(edge)], hist, c, out)
}

// poll fetches the heads and returns those of the given branches (nil
// for a branch that does not exist).
func (p *Promoter) poll(ctx context.Context, branches ...string) (map[string]*source.Revision, error) {
	res, err := p.opts.Repo.Poll(ctx)
	if err != nil {
		return nil, err
	}
	heads := map[string]*source.Revision{}
	want := map[string]bool{}
	for _, b := range branches {
		want[b] = true
	}
	found := map[string]bool{}
	for _, b := range res.Branches {
		found[b.Branch] = true
		if !want[b.Branch] {
			continue
		}
		switch {
		case b.Err != nil && errors.Is(b.Err, source.ErrBranchMissing):
			heads[b.Branch] = nil
		case b.Err != nil:
			return nil, b.Err
		default:
			heads[b.Branch] = b.Revision
		}
	}
	for _, b := range branches {
		if !found[b] {
			return nil, fmt.Errorf("the repository does not follow %s: follow Pipeline.Branches()", b)
		}
	}
	return heads, nil
}

// history reads and analyses the target branch's recent history, once
// per target head. branchHead is the promotion branch's head, nil when it
// is absent or not polled (it helps recognise squash merges).
func (p *Promoter) history(ctx context.Context, edge Edge, to Environment, target, branchHead *source.Revision) (*historyCache, error) {
	s := p.edgeState(edge.Name())
	p.mu.Lock()
	hc := s.history
	p.mu.Unlock()
	if hc != nil && hc.head == target.Commit {
		return hc, nil
	}
	log, err := p.opts.Repo.Log(ctx, source.LogRequest{Commit: target.Commit, Since: p.clock.Now().Add(-p.opts.HistoryWindow)})
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", target.Branch, err)
	}
	squashed := p.squashes(ctx, edge, to, target.Commit, log, branchHead)
	hc = &historyCache{head: target.Commit, log: log, squashed: squashed, h: analyzeTarget(edge.From, target.Commit, log, squashed)}
	p.mu.Lock()
	s.history = hc
	p.mu.Unlock()
	return hc, nil
}

func firstFailed(gates []GateResult) *GateResult {
	for i := range gates {
		if !gates[i].Passed {
			g := gates[i]
			return &g
		}
	}
	return nil
}
