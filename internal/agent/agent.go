package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/lease"
	"github.com/baton-gitops/baton/internal/workpool"
	"github.com/baton-gitops/baton/preview"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// Options configure an Agent. Zero values pick the documented defaults.
type Options struct {
	// Config is the loaded baton.yaml. Required; Config.Sync must name at
	// least one environment.
	Config *config.Config
	// REST reaches the cluster. Required.
	REST *rest.Config
	// Logger receives one line per sync, health change and promotion.
	// Nil discards.
	Logger *slog.Logger
	// Recorder receives measurements; nil records nothing.
	Recorder Recorder
	// SourceMetrics receives git operation measurements; nil records nothing.
	SourceMetrics source.Metrics
	// Metrics is served at /metrics (promhttp.HandlerFor the registry);
	// nil answers 404 there.
	Metrics http.Handler
	// Promoter evaluates the pipeline edges out of the synced environments.
	// Nil builds one from the configuration (NewPipelinePromoter) when the
	// pipeline has edges.
	Promoter Promoter
	// Identity names this replica in the Lease. Default: the host name
	// (the pod name in a cluster) and a random suffix.
	Identity string
	// Listener serves HTTP; nil listens on Config.Listen.HTTP.
	Listener net.Listener
	// WebhookListener, when set, serves the webhook receiver apart, as
	// Config.Listen.Webhook does; nil listens there when it is set.
	WebhookListener net.Listener
	// Clock tells time for durations (soak, backoff, jitter). Nil means
	// the system clock.
	Clock Clock
	// BackoffBase and BackoffMax shape the exponential backoff after
	// consecutive failures of a poll or a sync: BackoffBase doubled per
	// failure, capped at BackoffMax. Defaults DefaultBackoffBase and
	// DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// Jitter spreads every interval and backoff by up to ±Jitter (a
	// fraction). Zero means DefaultJitter; negative means none.
	Jitter float64
	// RenderWorker is an executable that renders in a process of its own,
	// so that limits.renderMemory and limits.renderTimeout hold whatever a
	// commit makes Kustomize do (render.Options.WorkerPath; the baton
	// binary is one). Empty renders in this process: the checks made
	// before Kustomize runs still apply, the memory and time limits not.
	RenderWorker string
}

// Agent is Baton's in-cluster agent. Build it with New, start it with Run.
//
// Only the replica that holds the Lease (or the only replica, with leader
// election off) polls, applies and promotes. A standby serves /healthz,
// /readyz (ready: it can take over at once) and /api/status (its role and
// the leader's identity; environment states are those of its own last
// leadership, if any), accepts webhooks (handed to the leader through a
// ConfigMap the leader watches, see triggerRelay) and does nothing else.
type Agent struct {
	cfg      *config.Config
	rest     *rest.Config
	log      *slog.Logger
	recorder Recorder
	identity string
	listener net.Listener
	// webhookListener serves the webhook apart; see Options.
	webhookListener net.Listener
	// limits are the HTTP servers' timeouts; zero means defaultHTTPLimits.
	limits   httpLimits
	metrics  http.Handler
	webhook  http.Handler
	board    *statusBoard
	parts    *parts
	repos    []*source.Repository
	watchers []*repoWatcher
	loops    []*envLoop
	// previewer posts pull request previews while leading (with leader
	// election on: while holding the old Lease); nil without a
	// forge or with previews off.
	previewer *preview.Previewer
	// previewMu keeps previewer runs apart (runPreviews).
	previewMu sync.Mutex
	// relay hands webhooks a standby receives to the leader; nil without
	// leader election.
	relay *triggerRelay
	// shards holds this replica's share of the environments' Leases; nil
	// without leader election.
	shards *lease.Manager
	// runCtx is Run's context: the repository watchers run under it.
	runCtx context.Context

	closers []func()
}

// New checks the options and builds the agent's parts: one git repository
// store per repository used by a synced environment, the renderer, the
// reconciler and the health checker. Nothing contacts git or the cluster
// until Run.
func New(opts Options) (*Agent, error) {
	cfg := opts.Config
	if cfg == nil || opts.REST == nil {
		return nil, errors.New("agent: Config and REST are required")
	}
	if len(cfg.Sync) == 0 {
		return nil, errors.New("sync: names no environment; list the environments this agent applies")
	}
	// A pass writes only while this replica holds its environment's Lease:
	// the check is the last one before the network (lease.Guard).
	rc := rest.CopyConfig(opts.REST)
	rc.WrapTransport = transport.Wrappers(lease.Guard, opts.REST.WrapTransport)
	// Watch streams are read without gzip: each compressed stream holds a
	// 32 KiB window and its reader's buffers (a third of the heap of an
	// agent with a thousand environments' watches), and in a cluster the
	// bytes are cheap.
	rc.DisableCompression = true
	qps, burst := KubeAPILimits(cfg.Agent)
	rc.QPS, rc.Burst, rc.RateLimiter = qps, burst, nil
	a := &Agent{cfg: cfg, rest: rc, log: opts.Logger, recorder: opts.Recorder, identity: opts.Identity,
		listener: opts.Listener, webhookListener: opts.WebhookListener, metrics: opts.Metrics}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.recorder == nil {
		a.recorder = NopRecorder{}
	}
	if a.identity == "" {
		host, _ := os.Hostname()
		a.identity = fmt.Sprintf("%s_%x", host, time.Now().UnixNano()&0xffffff)
	}
	clock := opts.Clock
	if clock == nil {
		clock = systemClock{}
	}
	t := timing{backoffBase: opts.BackoffBase, backoffMax: opts.BackoffMax, jitter: opts.Jitter}
	if t.backoffBase <= 0 {
		t.backoffBase = DefaultBackoffBase
	}
	if t.backoffMax <= 0 {
		t.backoffMax = DefaultBackoffMax
	}
	if t.jitter == 0 {
		t.jitter = DefaultJitter
	} else if t.jitter < 0 {
		t.jitter = 0
	}
	role := RoleStandby
	if !cfg.Agent.LeaderElection.IsEnabled() {
		role = RoleSingle
	}

	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()
	ropts := RenderOptions(cfg, opts.RenderWorker)
	ropts.Logger = a.log
	renderer, err := render.New(ropts)
	if err != nil {
		return nil, fmt.Errorf("renderer: %w", err)
	}
	a.closers = append(a.closers, renderer.Close)
	if opts.RenderWorker == "" {
		a.log.Warn("renders run in the agent's process: limits.renderMemory and limits.renderTimeout are not enforced")
	}
	rec, err := reconciler.New(a.rest, reconciler.Options{Logger: a.log, InventoryNamespace: cfg.Agent.Namespace,
		Writer: a.identity, QPS: qps, Burst: burst})
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	checkerOpts := health.CheckerOptions{Logger: a.log, Now: clock.Now}
	// The agent's own identity follows every environment that runs as it
	// through one watch per kind; impersonated accounts, which may list
	// their namespaces only, per namespace.
	ownOpts := checkerOpts
	ownOpts.SharedLabel = reconciler.LabelEnvironment
	checker, err := health.NewChecker(a.rest, ownOpts)
	if err != nil {
		rec.Close()
		return nil, fmt.Errorf("health checker: %w", err)
	}
	envCheckers := &checkers{rest: a.rest, opts: checkerOpts, own: checker}
	var statuses []EnvironmentStatus
	workers, waits := Workers(cfg.Agent)
	a.parts = &parts{renderer: renderer, reconciler: rec, checker: checker, promoter: opts.Promoter,
		recorder: a.recorder, log: a.log, clock: clock, timing: t,
		syncs: workpool.New(workers), waits: workpool.New(waits)}

	cacheDir, err := CacheDir(cfg)
	if err != nil {
		return nil, err
	}
	if err := a.wireForge(cacheDir, opts.SourceMetrics, clock); err != nil {
		return nil, err
	}
	promotes := false
	for _, name := range cfg.Sync {
		promotes = promotes || len(cfg.EdgesFrom(name)) > 0 || len(cfg.RevertEdgesInto(name)) > 0
	}
	if a.parts.promoter == nil && promotes {
		j, err := newJournal(a.rest, cfg.Agent.Namespace)
		if err != nil {
			return nil, err
		}
		pp, err := NewPipelinePromoter(PipelinePromoterOptions{Config: cfg, CacheDir: cacheDir, Logger: a.log,
			SourceMetrics: opts.SourceMetrics, Clock: clock, Journal: j})
		if err != nil {
			return nil, err
		}
		if pp != nil {
			a.parts.promoter = pp
			a.closers = append(a.closers, func() { _ = pp.Close() })
		}
	}
	if le := cfg.Agent.LeaderElection; le.IsEnabled() {
		cs, err := kubernetes.NewForConfig(a.rest)
		if err != nil {
			return nil, fmt.Errorf("webhook relay client: %w", err)
		}
		a.relay = newTriggerRelay(cs, cfg.Agent.Namespace, le.LeaseName, a.identity, a.log)
	}
	// One store and one watcher per repository, following only the branches
	// of the environments this agent syncs.
	byRepo := map[string][]*envLoop{}
	var repoOrder []string
	for _, name := range cfg.Sync {
		env := *cfg.Environment(name)
		if _, seen := byRepo[env.Repository]; !seen {
			repoOrder = append(repoOrder, env.Repository)
		}
		repo := cfg.Repository(env.Repository)
		l := newEnvLoop(a.parts, env, cfg.EdgesFrom(name), repo.Interval.Duration)
		if l.checker, err = envCheckers.forEnvironment(env); err != nil {
			return nil, err
		}
		l.reverts = cfg.RevertEdgesInto(name)
		l.pipeline = cfg.PipelineName(name)
		byRepo[env.Repository] = append(byRepo[env.Repository], l)
		a.loops = append(a.loops, l)
		st := EnvironmentStatus{Name: env.Name, Pipeline: cfg.PipelineName(name), Repository: repo.URL, Branch: env.Branch,
			Path: env.Path, Soak: env.Health.Soak}
		if env.Suspend {
			st.Suspended, st.SuspendReason = true, configSuspendReason
		}
		for _, e := range l.edges {
			st.Promotions = append(st.Promotions, PromotionInfo{To: e.To, Policy: e.Policy})
		}
		for _, e := range l.reverts {
			st.Reverts = append(st.Reverts, PromotionInfo{From: e.From, To: e.To, Policy: e.Policy})
		}
		statuses = append(statuses, st)
	}
	for _, name := range repoOrder {
		var branches []string
		for _, l := range byRepo[name] {
			// Environments may share a branch (one folder each, in a
			// monorepo): follow it once.
			if !slices.Contains(branches, l.env.Branch) {
				branches = append(branches, l.env.Branch)
			}
		}
		settings := RepositorySettings(*cfg.Repository(name), branches)
		repo, err := source.NewRepository(settings, source.Options{CacheDir: cacheDir, Logger: a.log, MaxBlobSize: cfg.Limits.MaxBlobSize.Value(),
			Metrics: opts.SourceMetrics, Clock: clock})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", name, err)
		}
		a.repos = append(a.repos, repo)
		a.watchers = append(a.watchers, newRepoWatcher(name, repo, byRepo[name], clock, a.log, t, a.relay))
	}
	a.board = newStatusBoard(a.identity, role, statuses)
	if cfg.Agent.LeaderElection.IsEnabled() {
		a.board.shard()
	}
	a.parts.board = a.board
	if a.webhook, err = a.webhookHandler(clock); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// The client-side rate limit of each of the agent's Kubernetes clients
// (agent.kubeAPIQPS, agent.kubeAPIBurst).
const (
	DefaultQPS   = 300
	DefaultBurst = 600
)

// KubeAPILimits resolves agent.kubeAPIQPS and agent.kubeAPIBurst. client-go's
// own default (5 a second, bursts of 10) would make the health watches of a
// hundred environments wait minutes for their lists; the API server's
// priority and fairness protects it from a higher one.
func KubeAPILimits(a config.Agent) (qps float32, burst int) {
	qps, burst = a.KubeAPIQPS, a.KubeAPIBurst
	if qps == 0 {
		qps = DefaultQPS
	}
	if burst == 0 {
		burst = max(DefaultBurst, int(2*qps))
	}
	return qps, burst
}

// Workers resolves agent.workers and agent.healthWaits: the renders and
// applies, and the health waits, that run at once. Both follow
// GOMAXPROCS, which Go (1.25 and later) sets from the container's CPU
// limit: four workers per CPU, because a pass spends most of its time
// waiting for the API server (a thousand small environments start in
// about two thirds of the time they take with one worker per CPU, see
// docs/benchmarks.md); health waits mostly wait on watches, 64 per CPU.
func Workers(a config.Agent) (workers, healthWaits int) {
	workers, healthWaits = a.Workers, a.HealthWaits
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	if healthWaits <= 0 {
		healthWaits = 64 * runtime.GOMAXPROCS(0)
	}
	return workers, healthWaits
}

// RepositorySettings returns the source settings of repo following only
// branches: signature requirements on other branches are dropped, so that
// they stay valid for the subset.
func RepositorySettings(repo config.Repository, branches []string) source.RepositorySettings {
	s := repo.RepositorySettings
	s.Branches = branches
	if sig := s.Signatures; sig != nil && len(sig.Branches) > 0 {
		var keep []string
		for _, b := range sig.Branches {
			for _, f := range branches {
				if b == f {
					keep = append(keep, b)
				}
			}
		}
		if len(keep) == 0 {
			s.Signatures = nil
		} else {
			s.Signatures = &source.SignatureSettings{KeyringFile: sig.KeyringFile, Branches: keep}
		}
	}
	return s
}

// CacheDir is where git stores live: agent.cacheDir, or the user cache
// folder plus "baton".
func CacheDir(cfg *config.Config) (string, error) {
	if cfg.Agent.CacheDir != "" {
		return cfg.Agent.CacheDir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("agent.cacheDir is not set and there is no user cache folder: %w", err)
	}
	return filepath.Join(dir, "baton"), nil
}

// webhookHandler builds the push receiver, or returns nil when no secret
// is configured.
func (a *Agent) webhookHandler(clock Clock) (http.Handler, error) {
	file := a.cfg.Webhook.SecretFile
	if file == "" {
		return nil, nil
	}
	secret, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("webhook.secretFile: %w", err)
	}
	secret = []byte(trimNewlines(string(secret)))
	if len(secret) == 0 {
		return nil, fmt.Errorf("webhook.secretFile: %s is empty", file)
	}
	var targets []source.WebhookTarget
	for _, w := range a.watchers {
		targets = append(targets, w)
	}
	// One secret for every sender kind: the configuration names one file.
	var prs []source.PullRequestTarget
	if a.previewer != nil {
		prs = append(prs, a.previewer)
	}
	return source.NewWebhookHandler(source.WebhookOptions{GitHubSecret: secret, GitLabToken: secret,
		GiteaSecret: secret, GenericSecret: secret, Targets: targets, PullRequests: prs, Logger: a.log, Clock: clock})
}

func trimNewlines(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// Status returns the current status, as /api/status serves it.
func (a *Agent) Status() Status { return a.board.snapshot() }

// close releases the stores and watches.
func (a *Agent) close() {
	for _, r := range a.repos {
		_ = r.Close()
	}
	if a.parts != nil && a.parts.reconciler != nil {
		a.parts.reconciler.Close()
	}
	for _, c := range a.closers {
		c()
	}
}
