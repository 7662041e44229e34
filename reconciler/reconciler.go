package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// Reconciler makes the cluster match the rendered objects of environments.
// It is safe for concurrent use by passes of different environments; passes
// of one environment must not overlap (the agent runs one loop per
// environment). It holds watches on the managed objects until Close.
type Reconciler struct {
	opts   Options
	client *objClient
	mapper *restmapper.DeferredDiscoveryRESTMapper
	// cache is nil when Options.DisableCache is set.
	cache *watchCache
	store *inventory.Store
	// accounts are the clients of impersonated ServiceAccounts.
	accounts accounts
}

// New returns a Reconciler talking to the cluster of cfg. cfg is copied and
// its rate limit replaced by Options.QPS and Options.Burst. No request is
// made until the first pass.
func New(cfg *rest.Config, opts Options) (*Reconciler, error) {
	if cfg == nil {
		return nil, fmt.Errorf("reconciler: nil rest config")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = opts.QPS, opts.Burst
	c.RateLimiter = nil
	if c.UserAgent == "" {
		c.UserAgent = "baton"
	}
	c.WarningHandler = warningLogger{opts.Logger}
	httpClient, err := rest.HTTPClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("reconciler: http client: %w", err)
	}
	oc, err := newObjClient(c, httpClient, opts.FieldManager)
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	m, err := newDiscoveryMapper(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("reconciler: %w", err)
	}
	cs, err := kubernetes.NewForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("reconciler: clientset: %w", err)
	}
	r := &Reconciler{
		opts:   opts,
		client: oc,
		mapper: m,
		store: &inventory.Store{Client: cs.CoreV1(), Namespace: opts.InventoryNamespace, FieldManager: opts.FieldManager,
			Writer: opts.Writer},
		accounts: accounts{base: c},
	}
	if !opts.DisableCache {
		if r.cache, err = r.newCache(c, httpClient, opts.Logger); err != nil {
			return nil, fmt.Errorf("reconciler: %w", err)
		}
	}
	return r, nil
}

// newCache returns a watch cache whose metadata-only watches go out as
// cfg's identity.
func (r *Reconciler) newCache(cfg *rest.Config, httpClient *http.Client, log *slog.Logger) (*watchCache, error) {
	md, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("metadata client: %w", err)
	}
	// A watch refused by RBAC is tried again with backoff, so that fixing
	// RBAC needs no restart.
	retry := retryPolicy{base: r.opts.CacheRetry, max: 16 * r.opts.CacheRetry, now: time.Now}
	return newWatchCache(md, log, r.opts.CacheSyncTimeout, retry), nil
}

// ReleaseCache stops the watches of every environment, the agent's and
// its impersonated accounts'; the next pass of each starts its own again.
// A replica that stops leading calls it: it applies nothing until it leads
// again.
func (r *Reconciler) ReleaseCache() {
	r.eachCache((*watchCache).release)
}

// ReleaseCacheOf stops the watches of env only: another replica syncs it
// now.
func (r *Reconciler) ReleaseCacheOf(env string) {
	r.eachCache(func(c *watchCache) { c.retain(env, nil) })
}

// Close stops the watches. A closed Reconciler must not be used again.
func (r *Reconciler) Close() {
	r.eachCache((*watchCache).close)
}

// eachCache calls f with the watch cache of the agent's identity and of
// each impersonated account.
func (r *Reconciler) eachCache(f func(*watchCache)) {
	if r.cache != nil {
		f(r.cache)
	}
	r.accounts.mu.Lock()
	defer r.accounts.mu.Unlock()
	for _, c := range r.accounts.byAccount {
		if c.cache != nil {
			f(c.cache)
		}
	}
}

// Sync runs one pass: plan, staged apply, prune, inventory. It returns the
// Result even when it fails, with every object's outcome; the error joins
// the object errors. Guarantees:
//   - an invalid desired set (a bad object, a duplicate, an unknown kind)
//     is refused before anything is applied;
//   - so is a set with an object outside Request.Scope, one of the agent's
//     own objects, or an object that belongs to another environment
//     (the error is a *RefusedError);
//   - nothing is pruned unless every object applied, and the inventory
//     names the new revision only then; before applying, it records the
//     objects the pass may create as pending, so that a failed or
//     interrupted pass leaves none of them unknown;
//   - a suspended request changes nothing and returns Result.Suspended.
func (r *Reconciler) Sync(ctx context.Context, req Request) (Result, error) {
	return r.run(ctx, req, false)
}

// Diff runs a pass without changing anything: every object is sent as a
// server-side apply dry run and each Change says what Sync would do, with a
// diff. Prune candidates are reported as they would be pruned. Suspend is
// ignored, so that a suspended environment can still be inspected.
func (r *Reconciler) Diff(ctx context.Context, req Request) (Result, error) {
	return r.run(ctx, req, true)
}

// Inventory reads what the last successful pass of env applied (Entries)
// and what an unfinished pass since may have created (Pending). An
// environment never synced has an empty inventory and no error.
func (r *Reconciler) Inventory(ctx context.Context, env string) (inventory.Inventory, error) {
	inv, _, err := r.store.Load(ctx, env)
	return inv, err
}

func (r *Reconciler) run(ctx context.Context, req Request, dryRun bool) (res Result, err error) {
	start := time.Now()
	res = Result{Environment: req.Environment, Revision: req.Revision, DryRun: dryRun}
	defer func() {
		res.count()
		res.Duration = time.Since(start)
		if err != nil {
			err = fmt.Errorf("environment %s at %s: %w", req.Environment, shortRevision(req.Revision), err)
		}
	}()
	if err := validateRequest(req); err != nil {
		return res, err
	}
	if req.Suspend && !dryRun {
		res.Suspended = true
		return res, nil
	}
	ids, err := r.clientsFor(req.ServiceAccount)
	if err != nil {
		return res, err
	}
	p := &pass{r: r, req: req, dryRun: dryRun, ids: ids, log: r.opts.Logger.With("environment", req.Environment, "revision", req.Revision)}
	err = p.run(ctx, &res)
	return res, err
}

func shortRevision(rev string) string {
	if rev == "" {
		return "unknown revision"
	}
	return githash.Short(rev)
}

// warningLogger passes API server warnings (deprecated APIs, unknown
// fields) to the logger instead of stderr.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Warn("api server warning", "warning", text)
	}
}
