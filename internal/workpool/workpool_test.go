package workpool

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// work is a piece of real work: hashing a megabyte.
func work() {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	_ = sha256.Sum256(buf)
}

// recorder notes which key held a slot, in order.
type recorder struct {
	mu    sync.Mutex
	order []string
}

func (r *recorder) add(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order = append(r.order, key)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.order, " ")
}

// waitQueued waits until n requests wait in p.
func waitQueued(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, w := p.Stats(); w == n {
			return
		}
		if time.Now().After(deadline) {
			_, w := p.Stats()
			t.Fatalf("%d requests waiting, want %d", w, n)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// holdAll takes every slot of p for the test, so that requests queue up in
// a known order; the returned function gives them back.
func holdAll(t *testing.T, p *Pool) func() {
	t.Helper()
	var releases []func()
	for range p.Size() {
		rel, err := p.Acquire(context.Background(), "test", Routine)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	return func() {
		for _, r := range releases {
			r()
		}
	}
}

// submit queues one request for key that, once granted, records the key,
// works and releases. It returns when the request waits in p.
func submit(t *testing.T, p *Pool, wg *sync.WaitGroup, rec *recorder, key string, prio Priority) {
	t.Helper()
	_, before := p.Stats()
	wg.Go(func() {
		release, err := p.Acquire(context.Background(), key, prio)
		if err != nil {
			t.Error(err)
			return
		}
		rec.add(key)
		work()
		release()
	})
	waitQueued(t, p, before+1)
}

// Environments take turns: one with three requests waiting (or asking
// again at once) gets one slot per round, not three in a row as the order
// of arrival would give.
func TestRoundRobinBetweenEnvironments(t *testing.T) {
	p := New(1)
	release := holdAll(t, p)
	var wg sync.WaitGroup
	rec := &recorder{}
	for _, key := range []string{"greedy", "greedy", "greedy", "a", "b"} {
		submit(t, p, &wg, rec, key, Routine)
	}
	release()
	wg.Wait()
	if got, want := rec.String(), "greedy a b greedy greedy"; got != want {
		t.Errorf("served %q, want %q (first come first served would be \"greedy greedy greedy a b\")", got, want)
	}
}

// Urgent requests go first; Boost makes an environment's routine request
// urgent.
func TestUrgentFirst(t *testing.T) {
	p := New(1)
	release := holdAll(t, p)
	var wg sync.WaitGroup
	rec := &recorder{}
	submit(t, p, &wg, rec, "a", Routine)
	submit(t, p, &wg, rec, "b", Routine)
	submit(t, p, &wg, rec, "c", Routine)
	submit(t, p, &wg, rec, "webhook", Urgent)
	p.Boost("c")
	release()
	wg.Wait()
	if got, want := rec.String(), "webhook c a b"; got != want {
		t.Errorf("served %q, want %q", got, want)
	}
}

// A request whose context ends while it waits is withdrawn and never
// holds a slot; the others are served.
func TestCancelledWhileWaiting(t *testing.T) {
	p := New(1)
	release := holdAll(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Acquire(ctx, "gone", Routine)
		errc <- err
	}()
	waitQueued(t, p, 1)
	var wg sync.WaitGroup
	rec := &recorder{}
	submit(t, p, &wg, rec, "a", Routine)
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("Acquire after cancel: %v", err)
	}
	release()
	wg.Wait()
	if got := rec.String(); got != "a" {
		t.Errorf("served %q, want a", got)
	}
	if busy, waiting := p.Stats(); busy != 0 || waiting != 0 {
		t.Errorf("busy %d, waiting %d after everything finished", busy, waiting)
	}
}

// Under many concurrent environments doing real work, no more than Size
// hold a slot at once, and every request is served.
func TestBound(t *testing.T) {
	const size, envs, rounds = 3, 12, 5
	p := New(size)
	var holding, peak atomic.Int32
	var served atomic.Int32
	var wg sync.WaitGroup
	for e := range envs {
		wg.Go(func() {
			for range rounds {
				release, err := p.Acquire(context.Background(), fmt.Sprintf("env-%d", e), Priority(e%2))
				if err != nil {
					t.Error(err)
					return
				}
				n := holding.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				work()
				holding.Add(-1)
				served.Add(1)
				release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > size {
		t.Errorf("%d held slots at once, size %d", peak.Load(), size)
	}
	if served.Load() != envs*rounds {
		t.Errorf("served %d, want %d", served.Load(), envs*rounds)
	}
}

// Waiting lists the keys in the order they would be served.
func TestWaitingOrder(t *testing.T) {
	p := New(1)
	release := holdAll(t, p)
	var wg sync.WaitGroup
	rec := &recorder{}
	for _, key := range []string{"a", "b", "a", "c"} {
		submit(t, p, &wg, rec, key, Routine)
	}
	p.Boost("c")
	if got := strings.Join(p.Waiting(), " "); got != "c a b" {
		t.Errorf("waiting %q, want \"c a b\"", got)
	}
	release()
	wg.Wait()
	if got := rec.String(); got != "c a b a" {
		t.Errorf("served %q, want \"c a b a\"", got)
	}
}
