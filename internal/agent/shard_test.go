package agent

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/transport"

	"github.com/baton-gitops/baton/internal/lease"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// freezer pauses a replica as a stopped process would be: once armed, the
// replica's first write to an application ConfigMap freezes it, and every
// request it makes waits until thaw — then goes on regardless of its
// context (a paused process does not notice cancellation). Those that
// reach lease.Guard after the replica lost its Leases are refused and
// counted.
type freezer struct {
	apps map[string]bool // application namespaces
	// mu guards armed and frozen.
	mu      sync.Mutex
	armed   bool
	frozen  bool
	thawed  chan struct{}
	refused atomic.Int32
}

func (f *freezer) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		f.mu.Lock()
		if f.armed && r.Method != http.MethodGet && f.isApp(r) {
			f.armed, f.frozen = false, true
		}
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			<-f.thawed
			r = r.WithContext(context.WithoutCancel(r.Context()))
		}
		resp, err := rt.RoundTrip(r)
		if errors.Is(err, lease.ErrNotHeld) {
			f.refused.Add(1)
		}
		return resp, err
	})
}

func (f *freezer) isApp(r *http.Request) bool {
	// /api/v1/namespaces/<ns>/configmaps/<name>
	parts := strings.Split(r.URL.Path, "/")
	return len(parts) >= 6 && parts[3] == "namespaces" && parts[5] == "configmaps" && f.apps[parts[4]]
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = false
	close(f.thawed)
}

// write is one write seen by the fencing watch: a Lease changing hands or
// an inventory written, in the API server's order (resourceVersion).
type write struct {
	rv    int64
	env   string
	lease bool   // a Lease event (holder), else an inventory (writer)
	who   string // the Lease's holder or the inventory's writer
}

// fencingLog watches the environments' Leases and inventories from the
// start of a test.
type fencingLog struct {
	mu     sync.Mutex
	writes []write
}

func watchFencing(t *testing.T, ns string) *fencingLog {
	t.Helper()
	log := &fencingLog{}
	cs := env.Clientset(t)
	lw, err := cs.CoordinationV1().Leases(ns).Watch(t.Context(), metav1.ListOptions{
		LabelSelector: lease.LabelRole + "=" + lease.RoleUnit})
	require.NoError(t, err)
	cw, err := cs.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{LabelSelector: inventory.LabelInventoryOf})
	require.NoError(t, err)
	t.Cleanup(func() { lw.Stop(); cw.Stop() })
	record := func(ev watch.Event) {
		var w write
		switch o := ev.Object.(type) {
		case *coordinationv1.Lease:
			w = write{env: o.Labels[lease.LabelUnit], lease: true, rv: rv(o.ResourceVersion)}
			if o.Spec.HolderIdentity != nil {
				w.who = *o.Spec.HolderIdentity
			}
		case *corev1.ConfigMap:
			w = write{env: o.Labels[inventory.LabelInventoryOf], who: o.Annotations[inventory.AnnotationWriter], rv: rv(o.ResourceVersion)}
		default:
			return
		}
		if ev.Type == watch.Deleted {
			return
		}
		log.mu.Lock()
		log.writes = append(log.writes, w)
		log.mu.Unlock()
	}
	go func() {
		for ev := range lw.ResultChan() {
			record(ev)
		}
	}()
	go func() {
		for ev := range cw.ResultChan() {
			record(ev)
		}
	}()
	return log
}

func rv(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// check replays the writes in the server's order and fails the test for
// every inventory written by a replica that did not hold the
// environment's Lease at that point.
func (l *fencingLog) check(t *testing.T) (inventories int) {
	t.Helper()
	l.mu.Lock()
	writes := append([]write(nil), l.writes...)
	l.mu.Unlock()
	sort.Slice(writes, func(i, j int) bool { return writes[i].rv < writes[j].rv })
	holder := map[string]string{}
	for _, w := range writes {
		if w.lease {
			holder[w.env] = w.who
			continue
		}
		inventories++
		if w.who == "" || holder[w.env] != w.who {
			t.Errorf("inventory of %s written by %q at resourceVersion %d while its Lease was held by %q",
				w.env, w.who, w.rv, holder[w.env])
		}
	}
	return inventories
}

// holders counts the environments each replica syncs, by their Leases.
func (m *multiFixture) holders(t *testing.T) map[string][]string {
	t.Helper()
	list, err := env.Clientset(t).CoordinationV1().Leases(m.agentNS).List(t.Context(), metav1.ListOptions{
		LabelSelector: lease.LabelRole + "=" + lease.RoleUnit})
	require.NoError(t, err)
	out := map[string][]string{}
	for _, l := range list.Items {
		h := ""
		if l.Spec.HolderIdentity != nil {
			h = *l.Spec.HolderIdentity
		}
		out[h] = append(out[h], l.Labels[lease.LabelUnit])
	}
	return out
}

// spreadOver reports whether every environment's Lease is held by one of
// replicas, with counts within one of each other.
func (m *multiFixture) spreadOver(t *testing.T, replicas ...string) bool {
	h := m.holders(t)
	total, lo, hi := 0, len(m.envs), 0
	for _, r := range replicas {
		n := len(h[r])
		total += n
		lo, hi = min(lo, n), max(hi, n)
	}
	return total == len(m.envs) && hi-lo <= 1
}

// allAt reports whether every environment's ConfigMap has value.
func (m *multiFixture) allAt(t *testing.T, value string) bool {
	for _, e := range m.envs {
		if configMapValue(t, m.ns[e], "cm-000") != value {
			return false
		}
	}
	return true
}

// commitAll commits value to every environment's branch.
func (m *multiFixture) commitAll(t *testing.T, envs []string, value string) {
	for _, e := range envs {
		m.repo.Commit(t, m.branch(e), gitserver.Change{Write: overlay(1, value)})
	}
}

// Thirty environments over three replicas: each syncs ten. One replica is
// paused (a stopped process) in the middle of an apply: the other two take
// its environments over within the lease duration and apply the new
// commits; when it resumes, its writes in flight are refused (it lost the
// Leases) and it takes its share back. Then another replica dies without
// releasing anything: its environments move within the lease duration
// too. Watching the Leases and the inventories' writers in the API
// server's order shows that no inventory was ever written by a replica
// that did not hold the environment's Lease.
func TestThirtyEnvironmentsOverThreeReplicas(t *testing.T) {
	m := newMultiFixture(t, 30)
	fencing := watchFencing(t, m.agentNS)
	cfg := m.config(m.configYAML(time.Hour, leaseConfig()))
	apps := map[string]bool{}
	for _, ns := range m.ns {
		apps[ns] = true
	}
	frozen := &freezer{apps: apps, thawed: make(chan struct{})}
	start := time.Now()
	replicas := map[string]*running{}
	for _, name := range []string{"replica-a", "replica-b", "replica-c"} {
		var mutate func(*Options)
		if name == "replica-b" {
			mutate = func(o *Options) { o.REST.WrapTransport = transport.Wrappers(o.REST.WrapTransport, frozen.wrap) }
		}
		replicas[name] = m.startAgent(cfg, name, mutate)
	}
	eventually(t, 90*time.Second, "ten environments each, all applied", func() bool {
		return m.spreadOver(t, "replica-a", "replica-b", "replica-c") && m.allAt(t, "v1")
	})
	t.Logf("30 environments spread over 3 replicas and applied in %s", time.Since(start).Round(time.Millisecond))

	// replica-b is paused in the middle of applying v2 to its environments.
	bEnvs := m.holders(t)["replica-b"]
	frozen.mu.Lock()
	frozen.armed = true
	frozen.mu.Unlock()
	m.commitAll(t, bEnvs, "v2")
	m.postPush(replicas["replica-b"].addr, m.branch(bEnvs[0]))
	eventually(t, 30*time.Second, "replica-b to freeze in an apply", func() bool {
		frozen.mu.Lock()
		defer frozen.mu.Unlock()
		return frozen.frozen
	})
	paused := time.Now()
	eventually(t, leaseDuration+4*retryPeriod+5*time.Second, "replica-b's environments to move to a and c", func() bool {
		return m.spreadOver(t, "replica-a", "replica-c")
	})
	moved := time.Since(paused)
	t.Logf("replica-b's %d environments moved %s after it paused (lease duration %s)", len(bEnvs), moved.Round(time.Millisecond), leaseDuration)
	eventually(t, 60*time.Second, "a and c to apply v2 to replica-b's environments", func() bool {
		for _, e := range bEnvs {
			if configMapValue(t, m.ns[e], "cm-000") != "v2" {
				return false
			}
		}
		return true
	})

	// replica-b resumes: what it had in flight is refused, and it takes
	// its share back from a and c, which give it up after their passes.
	frozen.thaw()
	eventually(t, 60*time.Second, "replica-b to take its share again", func() bool {
		return m.spreadOver(t, "replica-a", "replica-b", "replica-c")
	})
	require.Positive(t, frozen.refused.Load(), "no write of the resumed replica was refused by its fence")
	t.Logf("replica-b resumed: %d of its writes in flight were refused", frozen.refused.Load())
	m.commitAll(t, m.envs, "v3")
	m.postPush(replicas["replica-a"].addr, m.branch(m.envs[0])) // one repository: every replica polls it
	eventually(t, 90*time.Second, "every environment to apply v3", func() bool { return m.allAt(t, "v3") })

	// replica-c dies (its pod is killed: no request of it reaches the API
	// server again, and it releases no Lease): a and b take its
	// environments once their Leases expire, and apply what comes next.
	cEnvs := m.holders(t)["replica-c"]
	require.NotEmpty(t, cEnvs)
	replicas["replica-c"].die(t)
	delete(replicas, "replica-c")
	died := time.Now()
	// The bound: the last renewal may have been just before the death, the
	// Lease then runs out after leaseDuration, and a survivor takes it on
	// its next round; slack for a loaded machine.
	eventually(t, leaseDuration+4*retryPeriod+5*time.Second, "replica-c's environments to move to a and b", func() bool {
		return m.spreadOver(t, "replica-a", "replica-b")
	})
	t.Logf("replica-c's %d environments moved %s after it died (lease duration %s)", len(cEnvs),
		time.Since(died).Round(time.Millisecond), leaseDuration)
	m.commitAll(t, cEnvs, "v4")
	m.postPush(replicas["replica-a"].addr, m.branch(cEnvs[0]))
	eventually(t, 60*time.Second, "a and b to apply v4 to replica-c's environments", func() bool {
		for _, e := range cEnvs {
			if configMapValue(t, m.ns[e], "cm-000") != "v4" {
				return false
			}
		}
		return true
	})

	for _, r := range replicas {
		r.stop(t)
	}
	fencing.caughtUp(t, m.agentNS)
	n := fencing.check(t)
	require.Greater(t, n, 60, "too few inventory writes seen to tell anything")
	t.Logf("%d inventory writes, each by the replica holding the environment's Lease", n)
}

// caughtUp waits until the watches delivered every Lease and inventory
// write up to now.
func (l *fencingLog) caughtUp(t *testing.T, ns string) {
	t.Helper()
	cs := env.Clientset(t)
	leases, err := cs.CoordinationV1().Leases(ns).List(t.Context(), metav1.ListOptions{LabelSelector: lease.LabelRole + "=" + lease.RoleUnit})
	require.NoError(t, err)
	cms, err := cs.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: inventory.LabelInventoryOf})
	require.NoError(t, err)
	var wantLease, wantInv int64
	for _, x := range leases.Items {
		wantLease = max(wantLease, rv(x.ResourceVersion))
	}
	for _, x := range cms.Items {
		wantInv = max(wantInv, rv(x.ResourceVersion))
	}
	eventually(t, 10*time.Second, "the watches to deliver every write", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		var gotLease, gotInv int64
		for _, w := range l.writes {
			if w.lease {
				gotLease = max(gotLease, w.rv)
			} else {
				gotInv = max(gotInv, w.rv)
			}
		}
		return gotLease >= wantLease && gotInv >= wantInv
	})
}

// During an upgrade from the single-leader agent, the old leader keeps
// its Lease (agent.leaderElection.leaseName) and syncs every environment:
// replicas of the new kind take no environment while it renews it, and
// take them once it gives it up.
func TestOldKindOfLeaderKeepsReplicasOut(t *testing.T) {
	f := newFixture(t, overlay(1, "v1"))
	leases := env.Clientset(t).CoordinationV1().Leases(f.agentNS)
	now := metav1.NowMicro()
	old, err := leases.Create(t.Context(), &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "baton-test"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptrTo("old-agent"), LeaseDurationSeconds: ptrTo(int32(3)),
			AcquireTime: &now, RenewTime: &now}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The old leader renews its Lease, as client-go's election does.
	stopRenewing := make(chan struct{})
	renewer := make(chan struct{})
	go func() {
		defer close(renewer)
		tick := time.NewTicker(retryPeriod)
		defer tick.Stop()
		for {
			select {
			case <-stopRenewing:
				return
			case <-tick.C:
			}
			old.Spec.RenewTime = ptrTo(metav1.NowMicro())
			if l, err := leases.Update(context.Background(), old, metav1.UpdateOptions{}); err == nil {
				old = l
			}
		}
	}()

	cfg := f.config(f.configYAML(time.Hour, "", leaseConfig(), ""))
	a := f.startAgent(cfg, "replica-a", nil)
	member := lease.ReplicaLeaseName("baton-test", "replica-a")
	var renewals []string
	eventually(t, 30*time.Second, "replica-a to go through three rounds", func() bool {
		l, err := leases.Get(t.Context(), member, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil {
			return false
		}
		if r := l.Spec.RenewTime.String(); len(renewals) == 0 || renewals[len(renewals)-1] != r {
			renewals = append(renewals, r)
		}
		return len(renewals) >= 3
	})
	require.Empty(t, f.leaseHolder(), "replica-a took the environment while the old leader held its Lease")
	require.Empty(t, configMapValue(t, f.appNS, "cm-000"))

	// The old leader stops (a rolling update replaced it) and releases.
	close(stopRenewing)
	<-renewer
	old.Spec.HolderIdentity = nil
	_, err = leases.Update(t.Context(), old, metav1.UpdateOptions{})
	require.NoError(t, err)
	eventually(t, 30*time.Second, "replica-a to take the environment and apply it", func() bool {
		return f.leaseHolder() == "replica-a" && configMapValue(t, f.appNS, "cm-000") == "v1"
	})
	require.Eventually(t, func() bool { return a.agent.Status().Role == RoleLeader }, 10*time.Second, 10*time.Millisecond)
}

func ptrTo[T any](v T) *T { return &v }
