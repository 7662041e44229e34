// Package workpool bounds work shared by many environments and hands the
// slots out fairly: round-robin between environments rather than in the
// order requests arrived, urgent work (a push webhook, a person's sync
// request) before routine work.
//
// What is guaranteed:
//   - At most Size holders at once.
//   - Among waiting requests of one priority, environments take turns: an
//     environment that already had a turn waits behind every environment
//     that has not, whatever the order of arrival. An environment with many
//     requests waiting (or one that asks again the moment it is done) gets
//     one slot per round, not a run of them.
//   - Urgent requests are served before routine ones; Boost makes an
//     environment's waiting requests urgent.
//   - A request whose context ends while it waits is withdrawn.
//
// What is not: a holder is never interrupted. A slow holder delays others
// by keeping its slot until it releases it; callers bound their own work
// (the agent's sync and health timeouts), so that one slow environment
// costs others at most one slot of Size.
package workpool

import (
	"context"
	"sync"
)

// Priority orders waiting requests.
type Priority int

const (
	// Routine work: periodic resyncs, retries, the first sync.
	Routine Priority = iota
	// Urgent work: a push webhook or a person asked for it.
	Urgent
)

// Pool is a bounded set of slots. Build it with New; it is safe for
// concurrent use.
type Pool struct {
	size int

	// mu guards every field below.
	mu   sync.Mutex
	busy int
	// queues hold, per priority, the keys with waiting requests in turn
	// order; waiting holds each key's requests in arrival order.
	queues  [2][]string
	waiting [2]map[string][]*request
	// held counts slots per key, for Stats.
	held map[string]int
}

type request struct {
	key   string
	prio  Priority
	ready chan struct{} // closed when the slot is granted
	// granted is set under mu when the slot is handed over.
	granted bool
}

// New returns a pool of size slots; size < 1 is taken as 1.
func New(size int) *Pool {
	if size < 1 {
		size = 1
	}
	return &Pool{size: size, waiting: [2]map[string][]*request{{}, {}}, held: map[string]int{}}
}

// Size is the number of slots.
func (p *Pool) Size() int { return p.size }

// Acquire waits for a slot for key (an environment) and returns the
// function that gives it back, which must be called exactly once. It
// returns ctx's error, holding nothing, when ctx ends first.
func (p *Pool) Acquire(ctx context.Context, key string, prio Priority) (release func(), err error) {
	if prio != Urgent {
		prio = Routine
	}
	p.mu.Lock()
	if p.busy < p.size && p.emptyLocked() {
		p.busy++
		p.held[key]++
		p.mu.Unlock()
		return p.releaser(key), nil
	}
	r := &request{key: key, prio: prio, ready: make(chan struct{})}
	p.enqueueLocked(r)
	p.mu.Unlock()

	select {
	case <-r.ready:
		return p.releaser(key), nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.granted {
			// Granted while ctx ended: hand the slot on.
			p.held[key]--
			p.busy--
			p.grantLocked()
			return nil, ctx.Err()
		}
		p.withdrawLocked(r)
		return nil, ctx.Err()
	}
}

// Boost makes key's waiting requests urgent (a webhook arrived for an
// environment already waiting for a routine pass).
func (p *Pool) Boost(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs := p.waiting[Routine][key]
	if len(rs) == 0 {
		return
	}
	delete(p.waiting[Routine], key)
	p.queues[Routine] = remove(p.queues[Routine], key)
	for _, r := range rs {
		r.prio = Urgent
		p.enqueueLocked(r)
	}
}

// Stats returns the slots in use and the requests waiting.
func (p *Pool) Stats() (busy, waiting int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.waiting {
		for _, rs := range m {
			waiting += len(rs)
		}
	}
	return p.busy, waiting
}

// Waiting lists the keys with requests waiting, in the order they would
// be served: urgent ones first, then each priority's turn order.
func (p *Pool) Waiting() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(append([]string(nil), p.queues[Urgent]...), p.queues[Routine]...)
}

func (p *Pool) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.held[key]--
			if p.held[key] == 0 {
				delete(p.held, key)
			}
			p.busy--
			p.grantLocked()
		})
	}
}

func (p *Pool) emptyLocked() bool { return len(p.queues[Urgent]) == 0 && len(p.queues[Routine]) == 0 }

// enqueueLocked adds r behind its key's other requests; a key new to the
// queue goes to its back, behind every key already waiting.
func (p *Pool) enqueueLocked(r *request) {
	m := p.waiting[r.prio]
	if len(m[r.key]) == 0 {
		p.queues[r.prio] = append(p.queues[r.prio], r.key)
	}
	m[r.key] = append(m[r.key], r)
}

// grantLocked hands free slots to the next requests: urgent first, and
// within a priority the key at the front of the queue, which then goes to
// the back if it still has requests waiting.
func (p *Pool) grantLocked() {
	for p.busy < p.size {
		prio := Urgent
		if len(p.queues[Urgent]) == 0 {
			prio = Routine
		}
		q := p.queues[prio]
		if len(q) == 0 {
			return
		}
		key := q[0]
		q = q[1:]
		rs := p.waiting[prio][key]
		r := rs[0]
		if len(rs) == 1 {
			delete(p.waiting[prio], key)
		} else {
			p.waiting[prio][key] = rs[1:]
			q = append(q, key) // its next request waits for its next turn
		}
		p.queues[prio] = q
		r.granted = true
		p.busy++
		p.held[key]++
		close(r.ready)
	}
}

// withdrawLocked removes a waiting request.
func (p *Pool) withdrawLocked(r *request) {
	m := p.waiting[r.prio]
	rs := m[r.key]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 {
		delete(m, r.key)
		p.queues[r.prio] = remove(p.queues[r.prio], r.key)
	} else {
		m[r.key] = rs
	}
}

func remove(q []string, key string) []string {
	out := q[:0:0]
	for _, k := range q {
		if k != key {
			out = append(out, k)
		}
	}
	return out
}
