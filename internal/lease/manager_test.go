package lease

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-gitops/baton/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// Short durations so that takeovers happen within seconds.
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 300 * time.Millisecond
)

// span is one replica's work on one unit, by the test process's clock
// (every replica runs in it).
type span struct {
	replica    string
	start, end time.Time
}

// ledger records every replica's work on every unit.
type ledger struct {
	mu    sync.Mutex
	spans map[string][]*span
}

func (l *ledger) begin(replica, unit string) *span {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &span{replica: replica, start: time.Now()}
	l.spans[unit] = append(l.spans[unit], s)
	return s
}

func (l *ledger) finish(s *span) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.end = time.Now()
}

// holders returns, per unit, the replicas working on it now.
func (l *ledger) holders() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for u, ss := range l.spans {
		for _, s := range ss {
			if s.end.IsZero() {
				out[u] = append(out[u], s.replica)
			}
		}
	}
	return out
}

// checkNoOverlap fails the test if two replicas ever worked on one unit at
// the same time.
func (l *ledger) checkNoOverlap(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for u, ss := range l.spans {
		sorted := append([]*span(nil), ss...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].start.Before(sorted[j].start) })
		for i := 1; i < len(sorted); i++ {
			prev := sorted[i-1]
			if prev.end.IsZero() || prev.end.After(sorted[i].start) {
				t.Errorf("%s: %s worked on it from %s to %v while %s started at %s", u, prev.replica,
					prev.start.Format("15:04:05.000"), prev.end.Format("15:04:05.000"), sorted[i].replica,
					sorted[i].start.Format("15:04:05.000"))
			}
		}
	}
}

// worker is a Worker whose units do nothing but wait: the test is about
// who holds what, and when.
type worker struct {
	name   string
	ledger *ledger
	mu     sync.Mutex
	drain  map[string]chan struct{}
}

func (w *worker) Start(ctx context.Context, unit string) <-chan struct{} {
	if FromContext(ctx) == nil {
		panic("no fence in the unit's context")
	}
	s := w.ledger.begin(w.name, unit)
	drain := make(chan struct{})
	w.mu.Lock()
	w.drain[unit] = drain
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-drain:
		}
		w.ledger.finish(s)
	}()
	return done
}

func (w *worker) Drain(unit string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d := w.drain[unit]; d != nil {
		close(d)
		delete(w.drain, unit)
	}
}

// replica is one Manager run by the test.
type replica struct {
	m      *Manager
	cancel context.CancelFunc
	done   chan struct{}
	// cut makes every API request fail: the replica is dead or
	// partitioned, and can neither renew nor release.
	cut atomic.Bool
}

func startReplica(t *testing.T, ns, name string, units []string, l *ledger) *replica {
	t.Helper()
	r := &replica{done: make(chan struct{})}
	cfg := env.Config()
	cfg.QPS, cfg.Burst = -1, 0
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return rtFunc(func(req *http.Request) (*http.Response, error) {
			if r.cut.Load() {
				return nil, fmt.Errorf("replica %s is cut off", name)
			}
			return rt.RoundTrip(req)
		})
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Client: cs.CoordinationV1(), Namespace: ns, Group: "baton-test", Identity: name, Units: units,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		Worker: &worker{name: name, ledger: l, drain: map[string]chan struct{}{}},
		Logger: slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		_ = m.Run(ctx)
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + string(p))
	return len(p), nil
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, within, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting %s for %s", within, what)
	}
}

// spread reports whether every unit has exactly one holder and the
// replicas named hold counts within one of each other.
func spread(l *ledger, units []string, replicas ...string) bool {
	h := l.holders()
	count := map[string]int{}
	for _, u := range units {
		if len(h[u]) != 1 {
			return false
		}
		count[h[u][0]]++
	}
	lo, hi := len(units), 0
	for _, r := range replicas {
		lo, hi = min(lo, count[r]), max(hi, count[r])
	}
	return len(count) == len(replicas) && hi-lo <= 1
}

// Twelve units over replicas that come and go: always one holder per
// unit, never two at once, shares within one of each other; a cut-off
// replica's units move within the lease duration (and it stops working on
// them before); a replica that stops hands its units over at once.
func TestUnitsSpreadOverReplicas(t *testing.T) {
	ns := env.Namespace(t)
	var units []string
	for i := range 12 {
		units = append(units, fmt.Sprintf("env-%02d", i))
	}
	l := &ledger{spans: map[string][]*span{}}
	a := startReplica(t, ns, "replica-a", units, l)
	eventually(t, 20*time.Second, "replica-a to hold every unit", func() bool { return spread(l, units, "replica-a") })

	b := startReplica(t, ns, "replica-b", units, l)
	c := startReplica(t, ns, "replica-c", units, l)
	eventually(t, 30*time.Second, "4 units each", func() bool { return spread(l, units, "replica-a", "replica-b", "replica-c") })
	l.checkNoOverlap(t)

	// b is cut off: it can neither renew nor release.
	held := b.m.Held()
	b.cut.Store(true)
	cut := time.Now()
	eventually(t, leaseDuration+renewDeadline+5*time.Second, "b's units to move to a and c", func() bool {
		return spread(l, units, "replica-a", "replica-c")
	})
	t.Logf("b's %d units moved within %s of the cut (lease duration %s)", len(held), time.Since(cut).Round(time.Millisecond), leaseDuration)
	l.checkNoOverlap(t)

	// b comes back: it finds its Leases taken and takes a share again.
	b.cut.Store(false)
	eventually(t, 30*time.Second, "b to take its share again", func() bool {
		return spread(l, units, "replica-a", "replica-b", "replica-c")
	})

	// c stops (SIGTERM): it releases, a and b take over at once.
	c.stop()
	stopped := time.Now()
	eventually(t, leaseDuration, "c's units to move within the lease duration", func() bool {
		return spread(l, units, "replica-a", "replica-b")
	})
	t.Logf("c's units moved %s after it stopped", time.Since(stopped).Round(time.Millisecond))
	a.stop()
	b.stop()
	l.checkNoOverlap(t)
}
