package preview

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// key names one preview: an environment and a pull request.
type key struct {
	env    string
	number int
}

// inputs are what a preview depends on; a run is current when the inputs
// it ran with are still the wanted ones.
type inputs struct {
	head string // the pull request's head, as the forge lists it
	live uint64 // the environment's live generation
}

type job struct {
	key    key
	pr     PullRequest
	want   inputs
	done   inputs
	ran    bool      // a run completed (done is meaningful)
	due    time.Time // zero: nothing scheduled
	first  time.Time // first trigger since the last run started: bounds the debounce
	cancel context.CancelFunc
	runs   inputs // inputs of the run in flight
	fails  int
	// What the forge holds, remembered to save requests.
	commentID int64
	body      string
	statusSHA string // the commit the last final status was set on
	status    Status // that status
}

type runDone struct {
	key       key
	inputs    inputs
	comment   int64
	body      string
	statusSHA string
	status    Status
	err       error
}

// known is what the forge held after the last run: the comment, and the
// final status on the head it saw.
type known struct {
	commentID int64
	body      string
	statusSHA string
	status    Status
}

// Run previews until ctx ends. It lists every environment's pull requests
// at once, then at each interval and webhook.
func (p *Previewer) Run(ctx context.Context) error {
	jobs := map[key]*job{}
	live := map[string]uint64{}
	running := 0
	var wg sync.WaitGroup
	defer func() {
		for _, j := range jobs {
			if j.cancel != nil {
				j.cancel()
			}
		}
		wg.Wait()
	}()
	tick := p.clock.After(0)
	var timer <-chan time.Time
	for {
		var ev event
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			tick = p.clock.After(p.opts.Interval)
			ev.refresh = "*"
		case <-timer:
		case ev = <-p.events:
		}
		now := p.clock.Now()
		switch {
		case ev.refresh != "":
			for _, e := range p.opts.Environments {
				if ev.refresh == "*" || ev.refresh == e.Name {
					p.refresh(ctx, e, jobs, live, now)
				}
			}
		case ev.live != "":
			live[ev.live]++
			for _, j := range jobs {
				if j.key.env == ev.live {
					j.want.live = live[ev.live]
					p.schedule(j, now)
				}
			}
		case ev.done != nil:
			running--
			p.finish(jobs, ev.done, now)
		}
		// Start what is due, oldest first, within the bound.
		var next time.Time
		for _, j := range sortedJobs(jobs) {
			if j.due.IsZero() {
				continue
			}
			if j.cancel != nil && j.runs != j.want {
				j.cancel() // stale: its result would be overwritten
			}
			if j.due.After(now) || j.cancel != nil || running >= p.opts.Parallel {
				if next.IsZero() || j.due.Before(next) {
					next = j.due
				}
				continue
			}
			running++
			p.start(ctx, j, &wg)
		}
		timer = nil
		if !next.IsZero() {
			timer = p.clock.After(max(next.Sub(now), 10*time.Millisecond))
		}
	}
}

func sortedJobs(jobs map[key]*job) []*job {
	out := make([]*job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].key.env != out[b].key.env {
			return out[a].key.env < out[b].key.env
		}
		return out[a].key.number < out[b].key.number
	})
	return out
}

// schedule asks for a run after the debounce, and no later than ten
// debounces after the first of a burst of triggers.
func (p *Previewer) schedule(j *job, now time.Time) {
	if j.ran && j.done == j.want && j.cancel == nil {
		j.due, j.first = time.Time{}, time.Time{}
		return
	}
	if j.first.IsZero() {
		j.first = now
	}
	j.due = now.Add(p.opts.Debounce)
	if limit := j.first.Add(10 * p.opts.Debounce); j.due.After(limit) {
		j.due = limit
	}
}

// refresh lists env's open pull requests and updates the jobs: new ones
// and moved heads are scheduled, closed ones dropped.
func (p *Previewer) refresh(ctx context.Context, e Environment, jobs map[key]*job, live map[string]uint64, now time.Time) {
	prs, err := p.opts.Forge.OpenPullRequests(ctx, e.Branch)
	if err != nil {
		p.log.Warn("preview: list pull requests", "environment", e.Name, "branch", e.Branch, "error", err)
		return
	}
	open := map[int]bool{}
	for _, pr := range prs {
		if pr.Fork {
			p.log.Debug("preview: pull request from a fork is not previewed", "environment", e.Name, "number", pr.Number)
			continue
		}
		open[pr.Number] = true
		k := key{e.Name, pr.Number}
		j := jobs[k]
		if j == nil {
			j = &job{key: k}
			jobs[k] = j
		}
		j.pr = pr
		want := inputs{head: pr.HeadSHA, live: live[e.Name]}
		if want != j.want || !j.ran {
			j.want = want
			p.schedule(j, now)
		}
	}
	for k, j := range jobs {
		if k.env != e.Name || open[k.number] {
			continue
		}
		if j.cancel != nil {
			j.cancel()
		}
		delete(jobs, k)
		if !branchInUse(jobs, j.pr.Head) {
			p.opts.Heads.Forget(j.pr.Head)
		}
	}
}

func branchInUse(jobs map[key]*job, branch string) bool {
	for _, j := range jobs {
		if j.pr.Head == branch {
			return true
		}
	}
	return false
}

// start runs a preview of j in the background.
func (p *Previewer) start(ctx context.Context, j *job, wg *sync.WaitGroup) {
	runCtx, cancel := context.WithCancel(ctx)
	j.cancel, j.runs, j.due, j.first = cancel, j.want, time.Time{}, time.Time{}
	env, pr, in := p.envs[j.key.env], j.pr, j.want
	last := known{commentID: j.commentID, body: j.body, statusSHA: j.statusSHA, status: j.status}
	wg.Go(func() {
		defer cancel()
		d := p.preview(runCtx, env, pr, last)
		d.key, d.inputs = j.key, in
		// The loop may have stopped: never block on it.
		select {
		case p.events <- event{done: &d}:
		case <-ctx.Done():
		}
	})
}

// finish records a run's outcome on its job.
func (p *Previewer) finish(jobs map[key]*job, d *runDone, now time.Time) {
	j := jobs[d.key]
	if j == nil {
		return // the pull request closed meanwhile
	}
	j.cancel = nil
	if d.comment != 0 {
		j.commentID, j.body = d.comment, d.body
	}
	if d.statusSHA != "" {
		j.statusSHA, j.status = d.statusSHA, d.status
	}
	switch {
	case d.err == nil:
		j.done, j.ran, j.fails = d.inputs, true, 0
		if j.want != j.done {
			p.schedule(j, now)
		}
	case errors.Is(d.err, context.Canceled):
		if j.due.IsZero() {
			p.schedule(j, now)
		}
	default:
		// The forge or git failed: try again, later each time.
		j.fails++
		j.due = now.Add(min(time.Duration(1<<min(j.fails, 6))*p.opts.Debounce, p.opts.Interval))
		if d.comment == 0 {
			j.commentID = 0 // look the comment up again
		}
	}
}
