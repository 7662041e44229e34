// Package lease spreads units of work (the agent's environments) over the
// replicas of a Deployment with Kubernetes Leases: one Lease per unit,
// held by the one replica that works on it, and one membership Lease per
// replica, from which every replica counts the live replicas and aims at
// its fair share, ceil(units / replicas). Kubernetes is the arbiter: a
// Lease changes hands only through an update conditional on the version
// last seen, so two replicas can never both take it.
//
// What is guaranteed:
//   - A unit is worked on by at most one replica at a time. A replica
//     renews each Lease it holds; when it cannot within RenewDeadline of
//     the last renewal, the unit's context is cancelled and its Fence
//     ends (Guard refuses its writes). Another replica takes the Lease
//     only LeaseDuration after it last saw it renewed — later, since
//     RenewDeadline < LeaseDuration.
//   - A dead replica's units are taken over about LeaseDuration after its
//     last renewal (plus up to RetryPeriod): its membership expires then
//     too, so the others' shares grow to cover them; a unit left free
//     longer than LeaseDuration is taken by anyone, share or not.
//   - A replica that joins takes its share: the others see it and give up
//     their surplus gracefully (Worker.Drain: after the work in hand),
//     then release the Leases, which the newcomer takes at once.
//   - On shutdown (Run's ctx ends) every unit's context is cancelled, the
//     Manager waits for the work to stop, then releases the Leases and
//     deletes its membership, so that the others take over at once.
//
// What is not: the cost is one Lease write per held unit every
// RenewDeadline/3 (at least RetryPeriod), plus one per replica for
// membership; with many units, lengthen the durations (see the README's
// scale limits). Fairness is by count, not by the units' weight.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Worker does the work of units. Its methods are called from the
// Manager's goroutine and must not block.
type Worker interface {
	// Start starts unit's work, which must stop when ctx ends, and returns
	// a channel closed once it has stopped. ctx carries the unit's Fence
	// (FromContext). The Manager starts a unit again only after the last
	// start's channel closed.
	Start(ctx context.Context, unit string) (done <-chan struct{})
	// Drain asks unit's work to stop after what it is doing now (a sync
	// in progress completes); done closes then. The Lease is released
	// once it has.
	Drain(unit string)
}

// Options configure a Manager. Durations follow client-go's leader
// election: LeaseDuration > RenewDeadline > RetryPeriod.
type Options struct {
	// Client reaches the Leases. Required.
	Client coordinationv1client.LeasesGetter
	// Namespace holds the Leases. Required.
	Namespace string
	// Group names the replicas that share Units: the prefix of every Lease
	// name and the LabelGroup value. Required; a DNS subdomain.
	Group string
	// Identity names this replica in the Leases. Required, unique.
	Identity string
	// Units are the names of the units to spread (environment names, DNS
	// labels).
	Units []string
	// LeaseDuration is how long a Lease not renewed stays taken: the
	// longest a dead replica's units wait.
	LeaseDuration time.Duration
	// RenewDeadline is how long a replica keeps working on a unit without
	// a successful renewal.
	RenewDeadline time.Duration
	// RetryPeriod spaces the Manager's rounds (renewals, acquisitions).
	RetryPeriod time.Duration
	// Worker works on the units held. Required.
	Worker Worker
	// MayAcquire, when set, is asked before taking units: false holds off
	// (another kind of agent still works on everything).
	MayAcquire func() bool
	// Logger receives acquisitions, losses and releases; nil discards.
	Logger *slog.Logger

	now func() time.Time // tests
}

// Manager holds this replica's share of the units' Leases. Build it with
// New and run it with Run.
type Manager struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	selector string
	member   string // this replica's membership Lease name

	// mu guards every field below.
	mu sync.Mutex
	// seen is every Lease of the group as last observed, by name.
	seen map[string]*observed
	// held are the units this replica holds, stopping those whose work
	// is still stopping after the Lease was lost or released.
	held     map[string]*tenure
	stopping map[string]<-chan struct{}
	// freeSince is when a unit was first seen without a live holder.
	freeSince map[string]time.Time
	replicas  int
	// memberLease is the membership Lease as last written.
	memberLease *coordinationv1.Lease
}

// observed is a Lease and when it last changed hands or was renewed, by
// this replica's clock (clocks of replicas are never compared).
type observed struct {
	lease  *coordinationv1.Lease
	seenAt time.Time
}

func (o *observed) holder() string {
	if h := o.lease.Spec.HolderIdentity; h != nil {
		return *h
	}
	return ""
}

// live reports whether the Lease is held and renewed within its duration.
func (o *observed) live(now time.Time) bool {
	if o.holder() == "" {
		return false
	}
	d := time.Duration(ptr.Deref(o.lease.Spec.LeaseDurationSeconds, 0)) * time.Second
	return now.Before(o.seenAt.Add(d))
}

// tenure is the holding of one unit.
type tenure struct {
	unit      string
	fence     *Fence
	lease     *coordinationv1.Lease // as last written
	lastRenew time.Time
	done      <-chan struct{}
	draining  bool
}

// New checks the options.
func New(opts Options) (*Manager, error) {
	switch {
	case opts.Client == nil || opts.Worker == nil:
		return nil, errors.New("lease: Client and Worker are required")
	case opts.Namespace == "" || opts.Group == "" || opts.Identity == "":
		return nil, errors.New("lease: Namespace, Group and Identity are required")
	case opts.LeaseDuration <= opts.RenewDeadline || opts.RenewDeadline <= opts.RetryPeriod || opts.RetryPeriod <= 0:
		return nil, fmt.Errorf("lease: want leaseDuration (%s) > renewDeadline (%s) > retryPeriod (%s) > 0",
			opts.LeaseDuration, opts.RenewDeadline, opts.RetryPeriod)
	}
	m := &Manager{opts: opts, log: opts.Logger, now: opts.now, seen: map[string]*observed{}, held: map[string]*tenure{},
		stopping: map[string]<-chan struct{}{}, freeSince: map[string]time.Time{}, replicas: 1,
		selector: labels.SelectorFromSet(labels.Set{LabelGroup: opts.Group}).String(),
		member:   ReplicaLeaseName(opts.Group, opts.Identity)}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m, nil
}

// Held lists the units this replica holds, sorted.
func (m *Manager) Held() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.held))
	for u := range m.held {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// Replicas is the number of live replicas last counted.
func (m *Manager) Replicas() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replicas
}

// IsMember reports whether identity is a live replica of the group (this
// one included).
func (m *Manager) IsMember(identity string) bool {
	if identity == m.opts.Identity {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, o := range m.seen {
		if o.lease.Labels[LabelRole] == RoleReplica && o.holder() == identity && o.live(now) {
			return true
		}
	}
	return false
}

// Holder returns the identity holding unit's Lease as last observed ("" for
// none or expired).
func (m *Manager) Holder(unit string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o := m.seen[UnitLeaseName(m.opts.Group, unit)]; o != nil && o.live(m.now()) {
		return o.holder()
	}
	return ""
}

// Run takes part until ctx ends, then stops the work of every unit held,
// releases their Leases and deletes the membership. It returns nil after
// a clean stop.
func (m *Manager) Run(ctx context.Context) error {
	infCtx, stopInformer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInformer()
	leases := m.opts.Client.Leases(m.opts.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = m.selector
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = m.selector
			return leases.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.observe(obj) },
		UpdateFunc: func(_, obj any) { m.observe(obj) },
		DeleteFunc: func(obj any) { m.forget(obj) },
	})
	go inf.RunWithContext(infCtx)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return m.shutdown()
	}
	m.log.Info("sharing environments", "group", m.opts.Group, "identity", m.opts.Identity, "environments", len(m.opts.Units))
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return m.shutdown()
		case <-time.After(jittered(m.opts.RetryPeriod)):
		}
	}
}

func (m *Manager) observe(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.seen[l.Name]
	o := &observed{lease: l, seenAt: m.now()}
	if prev != nil && prev.holder() == o.holder() && sameTime(prev.lease.Spec.RenewTime, l.Spec.RenewTime) {
		o.seenAt = prev.seenAt // an unrelated change (labels): not a renewal
	}
	m.seen[l.Name] = o
}

func (m *Manager) forget(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if l, ok := obj.(*coordinationv1.Lease); ok {
		m.mu.Lock()
		delete(m.seen, l.Name)
		m.mu.Unlock()
	}
}

func sameTime(a, b *metav1.MicroTime) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// round is one pass of the Manager: membership, renewals, then giving up
// surplus or taking the share.
func (m *Manager) round(ctx context.Context) {
	now := m.now()
	m.renewMembership(ctx, now)
	m.renewHeld(ctx)
	m.collectMembers(ctx, now)
	m.reap()
	if ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	m.replicas = m.liveReplicasLocked(now)
	target := share(len(m.opts.Units), m.replicas)
	active := 0
	for _, t := range m.held {
		if !t.draining {
			active++
		}
	}
	var drain []*tenure
	if active > target {
		drain = m.surplusLocked(active - target)
	}
	candidates := m.candidatesLocked(now, target-active)
	m.mu.Unlock()

	for _, t := range drain {
		m.drain(t)
	}
	if len(candidates) > 0 && (m.opts.MayAcquire == nil || m.opts.MayAcquire()) {
		for _, c := range candidates {
			if ctx.Err() != nil {
				return
			}
			m.acquire(ctx, c)
		}
	}
}

// liveReplicasLocked counts the replicas whose membership is live, this
// one included.
func (m *Manager) liveReplicasLocked(now time.Time) int {
	n := 1
	for name, o := range m.seen {
		if name != m.member && o.lease.Labels[LabelRole] == RoleReplica && o.live(now) {
			n++
		}
	}
	return n
}

// surplusLocked picks n held units to give up: those this replica prefers
// least.
func (m *Manager) surplusLocked(n int) []*tenure {
	var ts []*tenure
	for _, t := range m.held {
		if !t.draining {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(i, j int) bool {
		return preference(m.opts.Identity, ts[i].unit) < preference(m.opts.Identity, ts[j].unit)
	})
	if n > len(ts) {
		n = len(ts)
	}
	for _, t := range ts[:n] {
		t.draining = true
	}
	return ts[:n]
}

// candidate is a free unit and its Lease as observed (nil when none).
type candidate struct {
	unit  string
	lease *coordinationv1.Lease
}

// candidatesLocked lists up to want free units this replica prefers most,
// and any unit left free longer than LeaseDuration whatever want is.
func (m *Manager) candidatesLocked(now time.Time, want int) []candidate {
	var free, orphans []candidate
	for _, u := range m.opts.Units {
		if m.held[u] != nil || m.stopping[u] != nil {
			continue
		}
		o := m.seen[UnitLeaseName(m.opts.Group, u)]
		if o != nil && o.live(now) {
			delete(m.freeSince, u)
			continue
		}
		c := candidate{unit: u}
		if o != nil {
			c.lease = o.lease
		}
		since, ok := m.freeSince[u]
		if !ok {
			m.freeSince[u] = now
			since = now
		}
		if now.Sub(since) > m.opts.LeaseDuration {
			orphans = append(orphans, c)
		} else {
			free = append(free, c)
		}
	}
	sort.Slice(free, func(i, j int) bool {
		return preference(m.opts.Identity, free[i].unit) > preference(m.opts.Identity, free[j].unit)
	})
	if want < 0 {
		want = 0
	}
	if want < len(free) {
		free = free[:want]
	}
	return append(orphans, free...)
}

// reap forgets tenures whose fence ended (lost) and stopping work that
// has stopped.
func (m *Manager) reap() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for u, t := range m.held {
		if t.fence.Check() != nil && !t.draining {
			m.log.Warn("lost the Lease of an environment: stopped working on it", "environment", u,
				"lastRenewal", t.lastRenew.Format(time.RFC3339Nano))
			delete(m.held, u)
			m.stopping[u] = t.done
		}
	}
	for u, done := range m.stopping {
		select {
		case <-done:
			delete(m.stopping, u)
		default:
		}
	}
}

func jittered(d time.Duration) time.Duration {
	return d - time.Duration(float64(d)*0.2*randFloat())
}
