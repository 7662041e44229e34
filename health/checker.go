package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/discoverymapper"
)

// Checker follows applied objects in one cluster: Wait after an apply,
// Monitor afterwards, Check once. It watches through informers it starts for
// each call and stops when the call returns, so calls are independent and a
// Checker is safe for concurrent use.
type Checker struct {
	dyn    dynamic.Interface    // followed objects with a status (JSON)
	meta   metadata.Interface   // followed objects without one (protobuf)
	kube   kubernetes.Interface // pods, ReplicaSets and events (protobuf)
	mapper meta.ResettableRESTMapper
	log    *slog.Logger
	now    func() time.Time
	// shared is nil unless CheckerOptions.SharedLabel is set.
	shared *sharedWatches
	// evaluated, if set, is called with each object evaluated: tests count
	// how much work a change causes.
	evaluated func(ObjectRef)
}

// CheckerOptions configure a Checker. The zero value is the default.
type CheckerOptions struct {
	// Logger receives watch errors and cause-finder errors. Default: a
	// logger that discards.
	Logger *slog.Logger
	// Now is the clock for ReadyAt, Since, Started and Finished and for
	// judging what is recent. Default time.Now. Timeouts and resync
	// intervals use real timers regardless.
	Now func() time.Time
	// SharedLabel, when set, is a label every followed namespaced object
	// carries (Baton's environment label): the Checker then watches each
	// resource type once across all namespaces, selected by it, and pods,
	// ReplicaSets and Warning events once, for all its calls at once,
	// instead of per namespace and call. That is what an agent with many
	// environments needs; it costs the memory of every pod, ReplicaSet
	// and Warning event in the cluster (trimmed). A kind RBAC does not
	// let it list across namespaces is watched per namespace. An object
	// without the label reads as not found.
	SharedLabel string
}

// EvalOptions are the judgement settings shared by Wait, Monitor and
// Check, usually set per environment. The zero value is the default.
type EvalOptions struct {
	// SkipLoadBalancer treats a LoadBalancer Service as Current without an
	// address (see StatusOptions). Default false.
	SkipLoadBalancer bool
	// RestartThreshold is how many restarts make a crash-looping or
	// OOM-killed container a certain failure. Default 3. A lower value
	// fails faster but may condemn a container that crashes once at start
	// while a dependency comes up.
	RestartThreshold int32
	// RecentWindow is how long after an OOM kill a ready workload still
	// counts as Degraded. Default 10 minutes.
	RecentWindow time.Duration
}

// NewChecker returns a Checker for the cluster cfg points at. It validates
// cfg and builds the clients; it makes no request yet. Every request uses
// cfg's identity (an impersonated account if cfg says so); pods,
// ReplicaSets and events are read as protobuf whatever cfg's content type,
// since decoding them is most of what following a rollout costs.
func NewChecker(cfg *rest.Config, opts CheckerOptions) (*Checker, error) {
	if cfg == nil {
		return nil, errors.New("health: new checker: rest config is nil")
	}
	if cfg.Host == "" {
		return nil, errors.New("health: new checker: rest config has no host")
	}
	// Watches carry most of what a checker reads; gzip on them costs the
	// apiserver and the agent CPU for bandwidth that inside a cluster is
	// not short.
	cfg = rest.CopyConfig(cfg)
	cfg.DisableCompression = true
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("health: new checker for %s: %w", cfg.Host, err)
	}
	kube, err := kubernetes.NewForConfigAndClient(protobufConfig(cfg), httpClient)
	if err != nil {
		return nil, fmt.Errorf("health: new checker for %s: %w", cfg.Host, err)
	}
	metaClient, err := metadata.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("health: new checker for %s: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("health: new checker for %s: %w", cfg.Host, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("health: new checker for %s: %w", cfg.Host, err)
	}
	c := &Checker{
		dyn:    dyn,
		meta:   metaClient,
		kube:   kube,
		mapper: discoverymapper.New(disc),
		log:    opts.Logger,
		now:    opts.Now,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if opts.SharedLabel != "" {
		c.shared = newSharedWatches(c, opts.SharedLabel)
	}
	return c, nil
}

// protobufConfig is cfg asking for protobuf, which built-in kinds speak and
// which decodes several times faster than JSON.
func protobufConfig(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.ContentType = "application/vnd.kubernetes.protobuf"
	out.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return out
}

func (o EvalOptions) statusOptions() StatusOptions {
	return StatusOptions{SkipLoadBalancer: o.SkipLoadBalancer}
}

func (o EvalOptions) diagnoseOptions(now time.Time) DiagnoseOptions {
	return DiagnoseOptions{RestartThreshold: o.RestartThreshold, RecentWindow: o.RecentWindow, Now: now}.withDefaults()
}

func (o EvalOptions) validate() error {
	if o.RestartThreshold < 0 {
		return fmt.Errorf("restart threshold %d is negative", o.RestartThreshold)
	}
	if o.RecentWindow < 0 {
		return fmt.Errorf("recent window %s is negative", o.RecentWindow)
	}
	return nil
}

// Check evaluates objects once: it lists them and their pods and events,
// reports, and returns. For the CLI's status verb; to follow objects use
// Wait or Monitor. It returns early with Overall Cancelled if ctx ends
// before the lists complete.
func (c *Checker) Check(ctx context.Context, objects []ObjectRef, opts EvalOptions) Report {
	started := c.now()
	w, err := c.watch(ctx, objects, opts)
	if err != nil {
		return errorReport(err, started, c.now())
	}
	defer w.close()
	synced := w.waitSynced(ctx)
	w.evaluate(ctx)
	var v verdict
	v.observe(summaryOf(w.health).overall, c.now())
	rep := w.report(&v, started)
	if !synced {
		rep.Overall, rep.Cause, rep.Message = Cancelled, NoCause, "cancelled before the objects were listed"
	}
	rep.Finished = c.now()
	rep.Since = rep.Finished
	return rep
}

func errorReport(err error, started, finished time.Time) Report {
	return Report{Overall: OverallUnknown, Message: err.Error(), Err: err, Started: started, Since: finished, Finished: finished}
}
