package reconciler

import (
	"errors"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Options configure a Reconciler. Zero values pick the documented defaults.
type Options struct {
	// Logger receives debug logs of each pass. Nil discards them; results
	// are returned as data either way.
	Logger *slog.Logger
	// FieldManager names baton in managedFields. Default "baton". Changing it
	// on a live cluster makes the new name a second owner of every field.
	FieldManager string
	// Concurrency bounds the objects applied (or pruned) at once within a
	// stage. Default 8.
	Concurrency int
	// InventoryNamespace holds the inventory ConfigMaps: the agent's own
	// namespace. Required.
	InventoryNamespace string
	// QPS and Burst set the client-side rate limit on a copy of the config.
	// Defaults 100 and 200: client-go's 5/10 would make a 1,000-object
	// apply take minutes. A negative QPS disables the client-side limit
	// (the API server's priority and fairness still applies).
	QPS   float32
	Burst int
	// WaitTimeout bounds each wait: a CRD becoming Established, a Namespace
	// becoming Active, a recreated object going away. Default 2 minutes.
	WaitTimeout time.Duration
	// DisableCache turns off the watch cache of managed objects; every
	// object is then read with a GET on every pass. Use it where the agent
	// may not list and watch what it applies.
	DisableCache bool
	// CacheSyncTimeout bounds the wait for a new watch's first list, after
	// which lookups fall back to GETs until it catches up. Default 10 seconds.
	CacheSyncTimeout time.Duration
	// CacheRetry is how long a watch that RBAC refused waits before it is
	// tried again (lookups use GETs meanwhile); each further refusal doubles
	// the wait, up to 16 times CacheRetry. Default 30 seconds.
	CacheRetry time.Duration
	// Writer names this replica on every inventory it writes
	// (inventory.AnnotationWriter), so that who applied an environment
	// can be told. Empty writes none.
	Writer string
}

// Defaults.
const (
	DefaultFieldManager     = "baton"
	DefaultConcurrency      = 8
	DefaultQPS              = 100
	DefaultBurst            = 200
	DefaultWaitTimeout      = 2 * time.Minute
	DefaultCacheSyncTimeout = 10 * time.Second
	DefaultCacheRetry       = 30 * time.Second
)

// withDefaults validates o and fills in zero values.
func (o Options) withDefaults() (Options, error) {
	if o.InventoryNamespace == "" {
		return o, errors.New("reconciler options: InventoryNamespace is required (the agent's namespace)")
	}
	if errs := validation.IsDNS1123Label(o.InventoryNamespace); len(errs) > 0 {
		return o, errors.New("reconciler options: InventoryNamespace " + o.InventoryNamespace + ": " + errs[0])
	}
	if o.Concurrency < 0 {
		return o, errors.New("reconciler options: Concurrency must not be negative")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FieldManager == "" {
		o.FieldManager = DefaultFieldManager
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.QPS == 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.CacheSyncTimeout == 0 {
		o.CacheSyncTimeout = DefaultCacheSyncTimeout
	}
	if o.CacheRetry <= 0 {
		o.CacheRetry = DefaultCacheRetry
	}
	return o, nil
}
