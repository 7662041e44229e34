package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// relayInterval spaces a standby's writes of triggers: a webhook storm
// costs at most one write per interval, and a trigger waits at most this
// long to be written.
const relayInterval = 100 * time.Millisecond

// triggerRelay carries webhooks that reach a standby replica to the
// leader. Every replica may receive a push webhook (they sit behind one
// Service); only the leader polls. A standby writes the repository's key in
// a ConfigMap of the agent's namespace (<leaseName>-triggers) with a new
// value; the leader watches that ConfigMap and triggers the repository's
// poll when a value changes. The API server orders the writes and delivers
// the watch: no consensus of Baton's own, and a trigger written while no
// replica leads is covered by the poll every new leader makes at once.
type triggerRelay struct {
	cs        kubernetes.Interface
	namespace string
	name      string
	identity  string
	log       *slog.Logger
	// leading is set while this replica leads: its own webhooks trigger
	// its watchers directly.
	leading atomic.Bool

	mu      sync.Mutex // guards pending and seq
	pending map[string]bool
	seq     uint64
	// wake says pending gained a key; it holds one signal.
	wake chan struct{}
}

func newTriggerRelay(cs kubernetes.Interface, namespace, leaseName, identity string, log *slog.Logger) *triggerRelay {
	return &triggerRelay{cs: cs, namespace: namespace, name: leaseName + "-triggers", identity: identity, log: log,
		pending: map[string]bool{}, wake: make(chan struct{}, 1)}
}

var configMapKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// triggerKey is the ConfigMap key of a repository: its name when it is a
// valid key, else a hash of it.
func triggerKey(repo string) string {
	if configMapKey.MatchString(repo) && len(repo) <= 253 {
		return repo
	}
	h := sha256.Sum256([]byte(repo))
	return "repo-" + hex.EncodeToString(h[:8])
}

// forward hands a webhook's trigger of repo to the leader when this replica
// stands by. It never blocks.
func (r *triggerRelay) forward(repo string) {
	if r == nil || r.leading.Load() {
		return
	}
	r.mu.Lock()
	r.pending[triggerKey(repo)] = true
	r.mu.Unlock()
	signal(r.wake)
}

// run writes forwarded triggers until ctx ends, at most one write per
// relayInterval.
func (r *triggerRelay) run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		if wait := relayInterval - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		r.mu.Lock()
		keys := r.pending
		r.pending = map[string]bool{}
		r.seq++
		value := fmt.Sprintf("%s/%d/%d", r.identity, time.Now().UnixNano(), r.seq)
		r.mu.Unlock()
		last = time.Now()
		if err := r.write(ctx, keys, value); err != nil && ctx.Err() == nil {
			r.log.Warn("webhook: could not hand the trigger to the leader; its next poll picks the push up",
				"configMap", r.namespace+"/"+r.name, "error", err)
		}
	}
}

// write sets every key to value, creating the ConfigMap if needed.
func (r *triggerRelay) write(ctx context.Context, keys map[string]bool, value string) error {
	data := map[string]string{}
	for k := range keys {
		data[k] = value
	}
	cms := r.cs.CoreV1().ConfigMaps(r.namespace)
	for range 2 {
		body, err := json.Marshal(map[string]any{"data": data})
		if err != nil {
			return err
		}
		_, err = cms.Patch(ctx, r.name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: "baton"})
		if !apierrors.IsNotFound(err) {
			return err
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: r.name, Namespace: r.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "baton"}}, Data: data}
		if _, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "baton"}); !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// follow runs on the leader until ctx ends: every changed key of the
// triggers ConfigMap triggers the poll of its repository's watcher. What
// the ConfigMap held when the leadership began is not news (the watchers
// poll at once anyway).
func (r *triggerRelay) follow(ctx context.Context, watchers []*repoWatcher) {
	byKey := map[string]*repoWatcher{}
	for _, w := range watchers {
		byKey[triggerKey(w.name)] = w
	}
	factory := informers.NewSharedInformerFactoryWithOptions(r.cs, 0, informers.WithNamespace(r.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", r.name).String()
		}))
	inf := factory.Core().V1().ConfigMaps().Informer()
	var synced atomic.Bool
	fire := func(old, cur map[string]string) {
		for k, v := range cur {
			if w := byKey[k]; w != nil && old[k] != v {
				w.poke()
			}
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if cm, ok := obj.(*corev1.ConfigMap); ok && synced.Load() {
				fire(nil, cm.Data)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.ConfigMap)
			cur, ok2 := newObj.(*corev1.ConfigMap)
			if ok1 && ok2 {
				fire(old.Data, cur.Data)
			}
		},
	})
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
	synced.Store(true)
	<-ctx.Done()
	factory.Shutdown()
}
