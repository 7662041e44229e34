package source

import (
	"sync"
	"time"
)

// clientLimiter is a token bucket per client: rate tokens per second, at
// most burst, each client starting full. It keeps at most maxClients
// buckets; past that, buckets that have refilled (idle clients) are
// dropped, and if none has, all are: a flood of new addresses then costs
// the limiter its memory of the others, never memory without bound.
type clientLimiter struct {
	rate  float64
	burst float64
	clock Clock

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newClientLimiter(rate float64, burst int, clock Clock) *clientLimiter {
	return &clientLimiter{rate: rate, burst: float64(burst), clock: clock, buckets: map[string]*bucket{}}
}

// allow takes a token from client's bucket and reports whether there was
// one.
func (l *clientLimiter) allow(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refillLocked(client)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// has reports whether client's bucket holds a token, without taking it.
func (l *clientLimiter) has(client string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refillLocked(client).tokens >= 1
}

func (l *clientLimiter) refillLocked(client string) *bucket {
	now := l.clock.Now()
	b := l.buckets[client]
	if b == nil {
		if len(l.buckets) >= maxClients {
			l.evictLocked(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[client] = b
		return b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed*l.rate)
		b.last = now
	}
	return b
}

// evictLocked drops the buckets that are full by now (their clients were
// idle long enough to have forgotten nothing), or all of them.
func (l *clientLimiter) evictLocked(now time.Time) {
	for c, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, c)
		}
	}
	if len(l.buckets) >= maxClients {
		clear(l.buckets)
	}
}
