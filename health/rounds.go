package health

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// An evaluation round: the objects that watch events marked (see mark,
// and markPod for the controller chain) are evaluated, and the caller
// reports if what a report says changed. next decides when the next round
// may start.

// After a round that took d, the next waits roundGapFactor × d (at most
// maxRoundGap): while a rollout sends event after event, evaluating takes
// at most a tenth of the time, and each object is evaluated once for all
// the events that came meanwhile. A round costs little when little changed,
// so a single change (a pod that starts crash-looping) waits a few
// microseconds, not a fixed delay.
const (
	roundGapFactor = 9
	maxRoundGap    = 100 * time.Millisecond
)

// mark queues the followed objects with these keys for the next round.
func (w *watchSet) mark(keys ...objectKey) {
	w.mu.Lock()
	marked := false
	for _, k := range keys {
		for _, t := range w.index[k] {
			marked = w.markLocked(t) || marked
		}
	}
	w.mu.Unlock()
	if marked {
		w.signal()
	}
}

func (w *watchSet) markLocked(t *target) bool {
	if t.dirty {
		return false
	}
	t.dirty = true
	w.dirty = append(w.dirty, t)
	return true
}

// markWhere queues the targets for which pick is true.
func (w *watchSet) markWhere(pick func(*target) bool) {
	w.mu.Lock()
	for _, t := range w.targets {
		if pick(t) {
			w.markLocked(t)
		}
	}
	w.mu.Unlock()
}

// markTimeSensitive queues the objects whose evaluation may change with
// time alone: those with a cause. The only rule that reads the clock is a
// recent OOM kill, which gives a cause and ages out; without a cause,
// nothing changes until the cluster does, and a watch event says when.
// A healthy environment, or a rollout progressing normally, has none to
// re-evaluate. A new rule that reads the clock for an object without a
// cause must be added here.
func (w *watchSet) markTimeSensitive() {
	w.markWhere(func(t *target) bool { return w.health[t.index].Cause != NoCause })
}

func (w *watchSet) signal() {
	select {
	case w.changed <- struct{}{}:
	default: // a round is already pending
	}
}

// wake says why next returned.
type wake int

const (
	wakeRound   wake = iota // objects were marked, or a resync is due
	wakeTimeout             // the timeout channel fired
	wakeCancel              // ctx ended
)

// next blocks until the next round is due: after a change (no sooner than
// the last round's cost allows, see roundGapFactor) or a resync (which
// retries unresolved kinds and marks the time-sensitive objects), or until
// timeout fires or ctx ends. The caller's work between two calls is the
// round whose cost is measured.
func (w *watchSet) next(ctx context.Context, timeout, resync <-chan time.Time) wake {
	if !w.roundStart.IsZero() {
		cost := time.Since(w.roundStart)
		w.notBefore = time.Now().Add(min(roundGapFactor*cost, maxRoundGap))
		w.roundStart = time.Time{}
	}
	pending := false
	for {
		var hold <-chan time.Time
		if pending {
			wait := time.Until(w.notBefore)
			if wait <= 0 {
				w.roundStart = time.Now()
				return wakeRound
			}
			w.hold.Reset(wait)
			hold = w.hold.C
		}
		select {
		case <-ctx.Done():
			return wakeCancel
		case <-timeout:
			return wakeTimeout
		case <-w.changed:
			pending = true
		case <-resync:
			w.retryUnresolved()
			w.markTimeSensitive()
			pending = true
		case <-hold:
		}
	}
}

// evaluate evaluates the objects marked since the last round (all of them
// in the first) and reports whether the health of any changed. now comes
// from the Checker's clock once per round, so every object in one report
// is judged at the same instant.
func (w *watchSet) evaluate(ctx context.Context) bool {
	w.mu.Lock()
	batch := w.dirty
	w.dirty = nil
	for _, t := range batch {
		t.dirty = false
	}
	w.mu.Unlock()

	now := w.c.now()
	changed := false
	for _, t := range batch {
		oh := w.evaluateOne(ctx, t, now)
		if oh.Status == Current {
			if t.readyAt.IsZero() {
				t.readyAt = now
			}
		} else {
			t.readyAt = time.Time{}
		}
		oh.ReadyAt = t.readyAt
		prev := w.health[t.index]
		changed = changed || prev.Status != oh.Status || prev.Cause != oh.Cause || prev.Message != oh.Message
		w.health[t.index] = oh
	}
	return changed
}

func (w *watchSet) evaluateOne(ctx context.Context, t *target, now time.Time) ObjectHealth {
	if w.c.evaluated != nil {
		w.c.evaluated(t.ref)
	}
	oh := ObjectHealth{Ref: t.ref, Status: Unknown}
	if t.inf == nil {
		oh.Message = t.err.Error()
		return oh
	}
	if !cache.IsDone(t.inf.synced) {
		oh.Message = t.ref.String() + ": not yet listed"
		if err := t.inf.err(); err != nil {
			oh.Message += ": " + err.Error()
		}
		return oh
	}
	item, exists, err := t.inf.store.GetByKey(t.key())
	if err != nil || !exists {
		oh.Message = t.ref.String() + ": not found"
		return oh
	}
	var obj *unstructured.Unstructured
	switch o := item.(type) {
	case *unstructured.Unstructured:
		obj = o
	case *metav1.PartialObjectMetadata:
		obj = metadataObject(o, t.inf.gvk)
	default:
		oh.Message = fmt.Sprintf("%s: unexpected cached type %T", t.ref, item)
		return oh
	}
	res := ComputeWith(obj, w.opts.statusOptions())
	d := Diagnosis{Message: joinNonEmpty(": ", objectName(obj), res.Message)}
	if isWorkload(t.gk.String()) {
		found, err := w.finder.Find(ctx, obj, res, w.opts.diagnoseOptions(now))
		if err != nil {
			w.c.log.Warn("health: cause finder failed", "object", t.ref.String(), "error", err)
		} else {
			d = found
		}
	}
	oh.Status, oh.Message, oh.Cause = res.Status, d.Message, d.Cause
	if d.Certain && res.Status == InProgress {
		oh.Status = Failed
	}
	return oh
}

// summary is what a report says overall.
type summary struct {
	overall Overall
	cause   Cause
	message string
}

func summaryOf(objects []ObjectHealth) summary {
	overall, cause, msg := summarize(objects)
	return summary{overall: overall, cause: cause, message: msg}
}

// report builds the report of the objects' present health.
func (w *watchSet) report(v *verdict, started time.Time) Report {
	objects := make([]ObjectHealth, len(w.health))
	copy(objects, w.health)
	overall, cause, msg := summarize(objects)
	return Report{Overall: overall, Objects: objects, Cause: cause, Message: msg, Started: started, Since: v.since}
}
