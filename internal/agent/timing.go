package agent

import (
	"math/rand/v2"
	"time"
)

// Clock tells the time and waits. It has the shape of source.Clock, so one
// test clock serves both. Tests pass a clock they control; nil means the
// system clock.
type Clock interface {
	Now() time.Time
	// After sends the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Timing defaults (see Options).
const (
	DefaultBackoffBase = 5 * time.Second
	DefaultBackoffMax  = 5 * time.Minute
	// DefaultJitter spreads each wait by up to ±10 %, so that agents
	// restarted together do not poll and apply in lockstep.
	DefaultJitter = 0.1
)

// backoff is the wait after the n-th consecutive failure (n >= 1): base
// doubled n-1 times, capped at max.
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// jitter spreads d by up to ±fraction, with r drawn uniformly from [0, 1).
// It is pure so that tests can pin r.
func jitter(d time.Duration, fraction, r float64) time.Duration {
	return time.Duration(float64(d) * (1 + fraction*(2*r-1)))
}

// randomJitter is jitter with a random draw.
func randomJitter(d time.Duration, fraction float64) time.Duration {
	return jitter(d, fraction, rand.Float64())
}
