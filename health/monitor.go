package health

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultResync is MonitorOptions.Resync's default.
const DefaultResync = 30 * time.Second

// MonitorOptions configure Monitor. The zero value is the default.
type MonitorOptions struct {
	EvalOptions
	// Resync is how often the objects are evaluated again without a watch
	// event, so that time-based judgements move (a recent OOM kill ages
	// out of RecentWindow) and kinds not served yet are retried. Default
	// 30 seconds. Changes themselves are seen through the watches at once.
	Resync time.Duration
}

// Monitor keeps evaluating objects after their rollout, through watches,
// and calls onChange with a report whenever the verdict, a cause or a
// message changes: first once the objects are listed, then on every change.
// A pod OOM-killed an hour after the rollout makes the report Degraded with
// that cause; Report.Since says how long the verdict has held (for a soak
// gate: healthy since when).
//
// Monitor blocks until ctx ends and then returns nil; it returns an error
// only for bad input. onChange runs on Monitor's goroutine: a slow callback
// delays the next evaluation, and it must not call back into the same
// Monitor. When the environment's set of objects changes (a new sync),
// cancel and start a new Monitor.
func (c *Checker) Monitor(ctx context.Context, objects []ObjectRef, opts MonitorOptions, onChange func(Report)) error {
	if onChange == nil {
		return errors.New("health: monitor: onChange is nil")
	}
	if opts.Resync < 0 {
		return fmt.Errorf("health: monitor: resync %s is negative", opts.Resync)
	}
	if opts.Resync == 0 {
		opts.Resync = DefaultResync
	}
	started := c.now()
	w, err := c.watch(ctx, objects, opts.EvalOptions)
	if err != nil {
		return fmt.Errorf("health: monitor: %w", err)
	}
	defer w.close()

	resync := time.NewTicker(opts.Resync)
	defer resync.Stop()
	var v verdict
	var last summary
	sent := false
	for {
		if w.next(ctx, nil, resync.C) == wakeCancel {
			return nil
		}
		if !w.targetsSynced() {
			continue
		}
		changed := w.evaluate(ctx)
		s := summaryOf(w.health)
		v.observe(s.overall, c.now())
		if sent && !changed && s == last {
			continue
		}
		onChange(w.report(&v, started))
		last, sent = s, true
	}
}
