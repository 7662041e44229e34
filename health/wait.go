package health

import (
	"context"
	"fmt"
	"time"
)

// DefaultTimeout is WaitOptions.Timeout's default.
const DefaultTimeout = 5 * time.Minute

// waitResync is how often a wait evaluates again when no watch event
// arrives: it retries kinds not yet served and lets the time-based rules
// move. Changes themselves are seen through the watches at once.
const waitResync = 2 * time.Second

// WaitOptions configure Wait. The zero value is the default.
type WaitOptions struct {
	EvalOptions
	// Timeout bounds the wait. Default 5 minutes (DefaultTimeout). At the
	// timeout the report is Degraded, with the most important cause found
	// or TimedOut.
	Timeout time.Duration
	// OnProgress, if set, receives every changed report while the wait
	// runs (not the final one, which Wait returns), for the CLI's progress
	// display. It is called on the waiting goroutine: a slow callback
	// delays the verdict.
	OnProgress func(Report)
}

// Wait follows objects through watches until all are Current (Healthy),
// failure is certain (Degraded at once, not at the timeout: a passed
// progress deadline, a failed Job, an image that cannot be pulled, a
// container crash-looping or OOM-killed RestartThreshold times), the timeout
// passes (Degraded), or ctx ends (Cancelled, promptly: a newer revision
// makes this wait pointless). The report always carries every object's last
// known health. Bad references give Overall OverallUnknown and Report.Err.
//
// The informers Wait starts are stopped before it returns.
func (c *Checker) Wait(ctx context.Context, objects []ObjectRef, opts WaitOptions) Report {
	started := c.now()
	if opts.Timeout < 0 {
		return errorReport(fmt.Errorf("health: wait: timeout %s is negative", opts.Timeout), started, c.now())
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	w, err := c.watch(ctx, objects, opts.EvalOptions)
	if err != nil {
		return errorReport(fmt.Errorf("health: wait: %w", err), started, c.now())
	}
	defer w.close()

	timeout := time.NewTimer(opts.Timeout)
	defer timeout.Stop()
	resync := time.NewTicker(waitResync)
	defer resync.Stop()
	var v verdict
	var last summary
	sent := false
	for {
		switch w.next(ctx, timeout.C, resync.C) {
		case wakeCancel:
			w.evaluate(ctx)
			rep := w.report(&v, started)
			rep.Overall, rep.Cause = Cancelled, NoCause
			rep.Message = "cancelled: " + rep.Message
			rep.Since, rep.Finished = c.now(), c.now()
			return rep
		case wakeTimeout:
			return w.timedOut(&v, started, opts.Timeout)
		}
		if !w.targetsSynced() {
			continue
		}
		changed := w.evaluate(ctx)
		s := summaryOf(w.health)
		v.observe(s.overall, c.now())
		if s.overall == Healthy || s.overall == Degraded {
			rep := w.report(&v, started)
			rep.Finished = c.now()
			return rep
		}
		// A progress report only when something it says changed: building
		// one copies every object's health.
		if opts.OnProgress != nil && (!sent || changed || s != last) {
			opts.OnProgress(w.report(&v, started))
			sent = true
		}
		last = s
	}
}

// timedOut makes the final report of a wait that reached its timeout.
func (w *watchSet) timedOut(v *verdict, started time.Time, timeout time.Duration) Report {
	w.evaluate(w.ctx)
	v.observe(summaryOf(w.health).overall, w.c.now())
	rep := w.report(v, started)
	if rep.Overall == Healthy || rep.Overall == Degraded {
		// Became ready or failed in the last instant: the verdict stands.
		rep.Finished = w.c.now()
		return rep
	}
	rep.Overall = Degraded
	if rep.Cause == NoCause {
		rep.Cause = TimedOut
	}
	rep.Message = fmt.Sprintf("timed out after %s: %s", timeout, rep.Message)
	rep.Since, rep.Finished = w.c.now(), w.c.now()
	return rep
}

// verdict remembers since when the overall verdict holds.
type verdict struct {
	overall Overall
	since   time.Time
}

// observe notes the overall verdict at now, keeping since while it is
// unchanged.
func (v *verdict) observe(overall Overall, now time.Time) {
	if overall != v.overall || v.since.IsZero() {
		v.overall, v.since = overall, now
	}
}
