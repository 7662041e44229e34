package lease

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Fence is this replica's right to work on one unit. It is valid until
// RenewDeadline after the start of the last successful renewal of the
// unit's Lease, and ends for good when that passes: the context of the
// unit's work is then cancelled. Another replica can take the Lease only
// LeaseDuration after it last saw it renewed, which is later: the work
// has stopped before anyone else may start.
type Fence struct {
	unit     string
	deadline time.Duration
	now      func() time.Time
	cancel   context.CancelFunc

	// mu guards validUntil, timer and ended.
	mu         sync.Mutex
	validUntil time.Time
	timer      *time.Timer
	ended      bool
}

func newFence(unit string, deadline time.Duration, now func() time.Time, acquired time.Time, cancel context.CancelFunc) *Fence {
	f := &Fence{unit: unit, deadline: deadline, now: now, cancel: cancel}
	f.validUntil = acquired.Add(deadline)
	f.timer = time.AfterFunc(f.validUntil.Sub(now()), f.expire)
	return f
}

// renewed extends the fence after a renewal whose request started at.
func (f *Fence) renewed(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	if until := at.Add(f.deadline); until.After(f.validUntil) {
		f.validUntil = until
		f.timer.Reset(until.Sub(f.now()))
	}
}

// expire ends the fence if its time has passed (a timer that fired just
// before a renewal reset it does nothing).
func (f *Fence) expire() {
	f.mu.Lock()
	if f.ended || f.now().Before(f.validUntil) {
		f.mu.Unlock()
		return
	}
	f.ended = true
	f.mu.Unlock()
	f.cancel()
}

// end ends the fence now (the Lease was released or taken).
func (f *Fence) end() {
	f.mu.Lock()
	f.ended = true
	f.timer.Stop()
	f.mu.Unlock()
	f.cancel()
}

// Check returns nil while the fence holds, and an error naming the unit
// once it has ended or its time has passed.
func (f *Fence) Check() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended || !f.now().Before(f.validUntil) {
		return fmt.Errorf("%s: %w", f.unit, ErrNotHeld)
	}
	return nil
}

// ErrNotHeld says this replica no longer holds a unit's Lease.
var ErrNotHeld = fmt.Errorf("this replica no longer holds the Lease: stopped writing")

type fenceKey struct{}

// WithFence returns ctx carrying f, so that Guard checks it.
func WithFence(ctx context.Context, f *Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FromContext returns the fence ctx carries, or nil.
func FromContext(ctx context.Context) *Fence {
	f, _ := ctx.Value(fenceKey{}).(*Fence)
	return f
}

// Guard wraps a transport so that no request that writes leaves while the
// fence of its context has ended: the last check before the network, so
// that a request delayed anywhere above it (a rate limiter, a retry, a
// paused process) is checked when it is sent, not when it was made.
// Requests without a fence, and reads, pass.
func Guard(rt http.RoundTripper) http.RoundTripper {
	return guard{rt}
}

type guard struct{ next http.RoundTripper }

func (g guard) RoundTrip(r *http.Request) (*http.Response, error) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if f := FromContext(r.Context()); f != nil {
			if err := f.Check(); err != nil {
				return nil, err
			}
		}
	}
	return g.next.RoundTrip(r)
}

// WrappedRoundTripper lets client-go's debugging helpers see through.
func (g guard) WrappedRoundTripper() http.RoundTripper { return g.next }
