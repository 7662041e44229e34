// Package events records what the agent does to each environment as
// Kubernetes Events on its Environment object (baton.dev), or on its
// inventory ConfigMap when the cluster has no Environment resource, so that
// `kubectl describe environment prod` (or `kubectl events`) tells its story: Synced,
// SyncFailed, SyncRefused, Drifted, Pruned, HealthDegraded, Recovered, Promoted,
// PromotionFrozen, PromotionHeld, PromotionFailed. Each Event names the
// revision and its commit author in its message and in annotations, and
// the same facts go to the structured log.
//
// Recorder implements agent.Recorder. Its methods never block: they queue
// the event and return; one goroutine writes them (through client-go's
// event broadcaster, which aggregates repeats and rate-limits a busy
// object). When the queue is full, events are dropped and logged rather
// than slowing a sync. Only changes are recorded: the agent reports every
// pass, and an unchanged state is not news.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// Event reasons.
const (
	ReasonSynced          = "Synced"
	ReasonSyncFailed      = "SyncFailed"
	ReasonSyncRefused     = "SyncRefused"
	ReasonDrifted         = "Drifted"
	ReasonPruned          = "Pruned"
	ReasonHealthDegraded  = "HealthDegraded"
	ReasonRecovered       = "Recovered"
	ReasonPromoted        = "Promoted"
	ReasonPromotionFrozen = "PromotionFrozen"
	ReasonPromotionHeld   = "PromotionHeld"
	ReasonPromotionFailed = "PromotionFailed"
	// ReasonPromotionMerged is recorded on the source environment when a
	// promotion along one of its edges landed on the target (a pull request
	// merged), once, also when it landed while no agent ran.
	ReasonPromotionMerged = "PromotionMerged"
	// ReasonPromotionReverted is recorded on the target environment when a
	// promotion that left it unhealthy is reverted (revertOnUnhealthy).
	ReasonPromotionReverted = "PromotionReverted"
)

// Annotations on every Event.
const (
	AnnotationEnvironment = "baton.dev/environment"
	AnnotationRevision    = "baton.dev/revision"
	AnnotationAuthor      = "baton.dev/author"
	// AnnotationTo names the target environment of a promotion Event
	// (AnnotationEnvironment is its source).
	AnnotationTo = "baton.dev/to"
	// AnnotationPipeline names the environment's pipeline (application or
	// team), when it is in one.
	AnnotationPipeline = "baton.dev/pipeline"
)

// queueSize bounds the events waiting to be written: a few minutes of a
// busy agent's changes.
const queueSize = 256

// lookupTimeout bounds the lookup of an inventory ConfigMap's UID.
const lookupTimeout = 5 * time.Second

// Options configure a Recorder.
type Options struct {
	// Namespace holds the environments' Environment objects and inventory
	// ConfigMaps (the agent's namespace): the Events are recorded on them.
	// Required.
	Namespace string
	// Component names the reporting component in the Events. Default
	// "baton".
	Component string
	// Host names this replica in the Events' source (the pod name).
	// Optional.
	Host string
	// Logger receives one line per Event, and the drops. Nil discards.
	Logger *slog.Logger
	// Next, when set, also receives every record, after this recorder has
	// looked at it: the agent takes one Recorder, and the metrics want
	// the same records.
	Next agent.Recorder
	// CorrelatorOptions tune client-go's aggregation and rate limit of
	// Events per object; the zero value is client-go's default (a burst of
	// 25 per object, then one per five minutes).
	CorrelatorOptions record.CorrelatorOptions
}

// Recorder writes Kubernetes Events for the agent's records. Create it with
// New, stop it with Close.
type Recorder struct {
	opts        Options
	log         *slog.Logger
	client      kubernetes.Interface
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
	done        chan struct{}
	closeOnce   sync.Once

	// qmu guards closed and sends on queue against Close.
	qmu    sync.RWMutex
	closed bool
	queue  chan event

	// mu guards envs and edges: what was last reported, to report changes
	// only, and the revision facts later Events repeat.
	mu    sync.Mutex
	envs  map[string]*envState
	edges map[[2]string]string // from, to -> revision + outcome last reported

	// refs caches the environments' Environment object references; only
	// the writer goroutine uses it.
	refs map[string]*corev1.ObjectReference
	// dynamic reads Environment objects.
	dynamic dynamic.Interface
}

type envState struct {
	revision, author string // synced
	failing          bool   // the last pass failed
	health           string // last status, cause and revision reported
	degraded         bool   // degraded since the last healthy verdict
}

// event is one queued Event.
type event struct {
	env, eventType, reason, message string
	annotations                     map[string]string
}

// New starts a Recorder writing through cfg.
func New(cfg *rest.Config, opts Options) (*Recorder, error) {
	if opts.Namespace == "" {
		return nil, errors.New("events: Namespace is required (the agent's namespace)")
	}
	if opts.Component == "" {
		opts.Component = "baton"
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	r := &Recorder{opts: opts, log: opts.Logger, client: cs, queue: make(chan event, queueSize), done: make(chan struct{}),
		envs: map[string]*envState{}, edges: map[[2]string]string{}, refs: map[string]*corev1.ObjectReference{}}
	if r.dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.broadcaster = record.NewBroadcaster(record.WithCorrelatorOptions(opts.CorrelatorOptions))
	r.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(opts.Namespace)})
	r.recorder = r.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: opts.Component, Host: opts.Host})
	go r.write()
	return r, nil
}

// Close stops accepting events, writes the queued ones to the broadcaster
// and shuts it down. Events still in the broadcaster's own buffer may be
// lost, as at any process exit.
func (r *Recorder) Close() {
	r.closeOnce.Do(func() {
		r.qmu.Lock()
		r.closed = true
		close(r.queue)
		r.qmu.Unlock()
		<-r.done
		r.broadcaster.Shutdown()
	})
}

// emit queues an Event without blocking, and logs it.
func (r *Recorder) emit(e event) {
	attrs := []any{"reason", e.reason, "type", e.eventType, "environment", e.env, "message", e.message}
	for _, k := range []string{AnnotationPipeline, AnnotationRevision, AnnotationAuthor, AnnotationTo} {
		if v := e.annotations[k]; v != "" {
			attrs = append(attrs, k[len("baton.dev/"):], v)
		}
	}
	r.log.Info("event", attrs...)
	if len(e.message) > maxMessage {
		e.message = strings.ToValidUTF8(e.message[:maxMessage], "") + "…"
	}
	r.qmu.RLock()
	defer r.qmu.RUnlock()
	if r.closed {
		return // the agent has stopped
	}
	select {
	case r.queue <- e:
	default:
		r.log.Warn("event dropped: the queue is full", "reason", e.reason, "environment", e.env)
	}
}

// write records the queued events, one at a time, on their environment's
// inventory ConfigMap.
func (r *Recorder) write() {
	defer close(r.done)
	for e := range r.queue {
		ref := r.reference(e.env)
		r.recorder.AnnotatedEventf(ref, e.annotations, e.eventType, e.reason, "%s", e.message)
	}
}

// reference is the object the environment's Events are recorded on: its
// Environment object (kubectl describe environment, k9s, Headlamp), or,
// when the cluster has no Environment resource or the object does not
// exist yet, its inventory ConfigMap. A UID makes the Events show in
// `kubectl describe`; before the first successful sync the ConfigMap does
// not exist either and the Events name it without one.
func (r *Recorder) reference(env string) *corev1.ObjectReference {
	if ref, ok := r.refs[env]; ok {
		return ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	obj, err := r.dynamic.Resource(envobject.GVR).Namespace(r.opts.Namespace).Get(ctx, env, metav1.GetOptions{})
	switch {
	case err == nil:
		ref := &corev1.ObjectReference{Kind: envobject.Kind, APIVersion: envobject.APIVersion, Namespace: r.opts.Namespace,
			Name: env, UID: obj.GetUID()}
		r.refs[env] = ref
		return ref
	case !apierrors.IsNotFound(err):
		r.log.Warn("event: look up the environment object", "environment", r.opts.Namespace+"/"+env, "error", err.Error())
	}
	name := inventory.ConfigMapName(env)
	ref := &corev1.ObjectReference{Kind: "ConfigMap", APIVersion: "v1", Namespace: r.opts.Namespace, Name: name}
	cm, err := r.client.CoreV1().ConfigMaps(r.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		ref.UID = cm.UID
		// Not cached: the Environment object may appear (the agent
		// creates it), and the Events should move to it then.
	case !apierrors.IsNotFound(err):
		r.log.Warn("event: look up the inventory", "configmap", r.opts.Namespace+"/"+name, "error", err.Error())
	}
	return ref
}
