package lease

import (
	"context"
	"math/rand/v2"
	"time"

	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// renewConcurrency bounds the renewals of one round.
const renewConcurrency = 16

// shutdownGrace bounds the releases after Run's context ended.
const shutdownGrace = 10 * time.Second

func randFloat() float64 { return rand.Float64() }

// renewEvery is how often a held Lease is renewed: three tries within the
// renew deadline, at most once a round.
func (m *Manager) renewEvery() time.Duration {
	return max(m.opts.RenewDeadline/3, m.opts.RetryPeriod)
}

func (m *Manager) durationSeconds() *int32 {
	return ptr.To(int32((m.opts.LeaseDuration + time.Second - 1) / time.Second))
}

// renewMembership writes this replica's membership Lease, creating it
// first.
func (m *Manager) renewMembership(ctx context.Context, now time.Time) {
	leases := m.opts.Client.Leases(m.opts.Namespace)
	m.mu.Lock()
	l := m.memberLease
	m.mu.Unlock()
	var err error
	if l == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: m.member, Namespace: m.opts.Namespace,
			Labels: map[string]string{LabelGroup: m.opts.Group, LabelRole: RoleReplica}}}
		l.Spec = m.spec(now, now, 0)
		l, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			l, err = leases.Get(ctx, m.member, metav1.GetOptions{})
		}
	}
	if err == nil && l != nil {
		next := l.DeepCopy()
		next.Spec = m.spec(now, now, 0)
		l, err = leases.Update(ctx, next, metav1.UpdateOptions{})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.memberLease = nil // read it again next round
		if ctx.Err() == nil {
			m.log.Warn("membership Lease", "lease", m.member, "error", err.Error())
		}
		return
	}
	m.memberLease = l
}

func (m *Manager) spec(acquired, renewed time.Time, transitions int32) coordinationv1.LeaseSpec {
	return coordinationv1.LeaseSpec{HolderIdentity: ptr.To(m.opts.Identity), LeaseDurationSeconds: m.durationSeconds(),
		AcquireTime: &metav1.MicroTime{Time: acquired}, RenewTime: &metav1.MicroTime{Time: renewed},
		LeaseTransitions: ptr.To(transitions)}
}

// staleMembers is how long a membership Lease stays after it expired: a
// replica that died without deleting its own (a killed pod) leaves it.
const staleMembers = 10

// collectMembers deletes the membership Leases of replicas gone for more
// than staleMembers lease durations. Any replica may; the deletion is
// conditional on the version seen, so a replica that came back keeps its
// own.
func (m *Manager) collectMembers(ctx context.Context, now time.Time) {
	m.mu.Lock()
	var gone []*coordinationv1.Lease
	for name, o := range m.seen {
		if name != m.member && o.lease.Labels[LabelRole] == RoleReplica && !o.live(now) &&
			now.Sub(o.seenAt) > staleMembers*m.opts.LeaseDuration {
			gone = append(gone, o.lease)
		}
	}
	m.mu.Unlock()
	for _, l := range gone {
		err := m.opts.Client.Leases(m.opts.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion}})
		if err == nil {
			m.log.Info("deleted the membership Lease of a replica gone", "lease", l.Name)
		}
	}
}

// renewHeld renews the held Leases that are due.
func (m *Manager) renewHeld(ctx context.Context) {
	m.mu.Lock()
	due := []*tenure{}
	now := m.now()
	for _, t := range m.held {
		if now.Sub(t.lastRenew) >= m.renewEvery() && t.fence.Check() == nil {
			due = append(due, t)
		}
	}
	m.mu.Unlock()
	var g errgroup.Group
	g.SetLimit(renewConcurrency)
	for _, t := range due {
		g.Go(func() error {
			m.renew(ctx, t)
			return nil
		})
	}
	_ = g.Wait()
}

// renew renews one Lease. The fence is extended from the time the request
// started: the server may have applied it any time after.
func (m *Manager) renew(ctx context.Context, t *tenure) {
	leases := m.opts.Client.Leases(m.opts.Namespace)
	m.mu.Lock()
	next := t.lease.DeepCopy()
	m.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		started := m.now()
		next.Spec.RenewTime = &metav1.MicroTime{Time: started}
		next.Spec.LeaseDurationSeconds = m.durationSeconds()
		l, err := leases.Update(ctx, next, metav1.UpdateOptions{})
		if err == nil {
			m.mu.Lock()
			t.lease, t.lastRenew = l, started
			m.mu.Unlock()
			t.fence.renewed(started)
			return
		}
		if !apierrors.IsConflict(err) {
			if ctx.Err() == nil {
				m.log.Warn("renew the Lease of an environment", "environment", t.unit, "error", err.Error())
			}
			return // the fence's timer ends the tenure if this goes on
		}
		// Someone wrote the Lease: still ours (a stale version), or taken?
		cur, err := leases.Get(ctx, t.lease.Name, metav1.GetOptions{})
		if err != nil {
			return
		}
		if h := cur.Spec.HolderIdentity; h == nil || *h != m.opts.Identity {
			m.log.Warn("the Lease of an environment was taken: stopping at once", "environment", t.unit,
				"holder", ptr.Deref(h, ""))
			t.fence.end()
			return
		}
		next = cur.DeepCopy()
	}
}

// acquire takes a free unit's Lease: created, or updated on the version
// observed free, so that of two replicas trying only one succeeds. It
// starts the unit's work on success.
func (m *Manager) acquire(ctx context.Context, c candidate) {
	leases := m.opts.Client.Leases(m.opts.Namespace)
	started := m.now()
	var l *coordinationv1.Lease
	var err error
	if c.lease == nil {
		l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: UnitLeaseName(m.opts.Group, c.unit),
			Namespace: m.opts.Namespace,
			Labels:    map[string]string{LabelGroup: m.opts.Group, LabelRole: RoleUnit, LabelUnit: c.unit}}}
		l.Spec = m.spec(started, started, 0)
		l, err = leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		next := c.lease.DeepCopy()
		transitions := ptr.Deref(next.Spec.LeaseTransitions, 0)
		if ptr.Deref(next.Spec.HolderIdentity, "") != m.opts.Identity {
			transitions++
		}
		next.Spec = m.spec(started, started, transitions)
		l, err = leases.Update(ctx, next, metav1.UpdateOptions{})
	}
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			m.log.Warn("take the Lease of an environment", "environment", c.unit, "error", err.Error())
		}
		return // another replica was faster, or the server refused: next round
	}
	unitCtx, cancel := context.WithCancel(context.Background())
	t := &tenure{unit: c.unit, lease: l, lastRenew: started}
	t.fence = newFence(c.unit, m.opts.RenewDeadline, m.now, started, cancel)
	m.mu.Lock()
	m.held[c.unit] = t
	delete(m.freeSince, c.unit)
	m.mu.Unlock()
	m.log.Info("took the Lease of an environment", "environment", c.unit, "lease", l.Name)
	t.done = m.opts.Worker.Start(WithFence(unitCtx, t.fence), c.unit)
}

// drain gives a unit up gracefully: its work finishes what it is doing,
// then the Lease is released. Renewals go on meanwhile.
func (m *Manager) drain(t *tenure) {
	m.log.Info("giving an environment up to another replica", "environment", t.unit)
	m.opts.Worker.Drain(t.unit)
	go func() {
		<-t.done
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		m.release(ctx, t)
		m.mu.Lock()
		delete(m.held, t.unit)
		m.mu.Unlock()
	}()
}

// release ends the tenure and clears the Lease's holder, so that another
// replica takes it at once. A failure leaves it to expire.
func (m *Manager) release(ctx context.Context, t *tenure) {
	t.fence.end()
	m.mu.Lock()
	next := t.lease.DeepCopy()
	m.mu.Unlock()
	now := m.now()
	next.Spec.HolderIdentity = nil
	next.Spec.LeaseDurationSeconds = ptr.To(int32(1))
	next.Spec.RenewTime = &metav1.MicroTime{Time: now}
	if _, err := m.opts.Client.Leases(m.opts.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		m.log.Warn("release the Lease of an environment: it expires instead", "environment", t.unit, "error", err.Error())
		return
	}
	m.log.Info("released the Lease of an environment", "environment", t.unit)
}

// shutdown stops every unit's work, waits for it, releases the Leases and
// deletes the membership.
func (m *Manager) shutdown() error {
	m.mu.Lock()
	held := make([]*tenure, 0, len(m.held))
	for _, t := range m.held {
		held = append(held, t)
	}
	stopping := make([]<-chan struct{}, 0, len(m.stopping))
	for _, d := range m.stopping {
		stopping = append(stopping, d)
	}
	m.mu.Unlock()
	for _, t := range held {
		t.fence.cancel() // abandon the work in hand; the fence ends below
	}
	for _, t := range held {
		<-t.done
	}
	for _, d := range stopping {
		<-d
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var g errgroup.Group
	g.SetLimit(renewConcurrency)
	for _, t := range held {
		if t.draining {
			continue // its drain releases it
		}
		g.Go(func() error {
			if t.fence.Check() == nil {
				m.release(ctx, t)
			}
			return nil
		})
	}
	_ = g.Wait()
	m.mu.Lock()
	m.held = map[string]*tenure{}
	m.mu.Unlock()
	err := m.opts.Client.Leases(m.opts.Namespace).Delete(ctx, m.member, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		m.log.Warn("delete the membership Lease: it expires instead", "lease", m.member, "error", err.Error())
	}
	m.log.Info("stopped sharing environments", "identity", m.opts.Identity)
	return nil
}
