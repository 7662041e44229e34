package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fault is one kind of trouble injected while a release goes through the
// pipeline. arm runs before the release is committed (so that no trigger
// is missed) and returns what runs once it is: that returns when the fault
// has healed.
type fault struct {
	name string
	arm  func(w *world, n int) func()
}

var faults = []fault{
	{"kill-during-apply", func(w *world, n int) func() {
		fired := w.watch.on(w.releaseEvent("dev", n))
		return func() { w.killOn(fired, "the apply of dev") }
	}},
	{"kill-during-prune", func(w *world, n int) func() {
		fired := w.watch.on(w.pruneEvent("dev"))
		return func() { w.killOn(fired, "the prune of dev") }
	}},
	{"kill-after-inventory-write", func(w *world, n int) func() {
		// The first write is the write-ahead, the second the pass's end.
		nth := 1 + w.frnd.IntN(2)
		fired := w.watch.on(w.inventoryWrite("dev", nth))
		return func() { w.killOn(fired, fmt.Sprintf("inventory write %d of dev", nth)) }
	}},
	{"kill-during-promotion-push", func(w *world, n int) func() {
		w.proxy.set(hold, classPush)
		return func() { w.killHeld(classPush) }
	}},
	{"kill-during-pr-creation", func(w *world, n int) func() {
		w.proxy.set(hold, classPulls)
		return func() { w.killHeld(classPulls) }
	}},
	{"apiserver-restart-mid-apply", func(w *world, n int) func() {
		fired := w.watch.on(w.releaseEvent("dev", n))
		return func() {
			if !w.within(fired, 60*time.Second) {
				return
			}
			env.StopAPIServer(w.t)
			d := time.Duration(1000+w.frnd.IntN(3000)) * time.Millisecond
			w.pause(d)
			env.StartAPIServer(w.t)
			w.t.Logf("  API server down for %s from the first object of the release", d)
		}
	}},
	{"git-500", func(w *world, n int) func() {
		return func() { w.proxyFault(fail500, 2000, 4000, classFetch, classPush) }
	}},
	{"git-timeout", func(w *world, n int) func() {
		return func() { w.proxyFault(hang, 3000, 5000, classFetch, classPush) }
	}},
	{"git-dropped-connections", func(w *world, n int) func() {
		return func() { w.proxyFault(drop, 2000, 4000, classFetch, classPush) }
	}},
	{"forge-down-while-pr-opened", func(w *world, n int) func() {
		// Down from the moment staging has the release (the pull request
		// to prod is next).
		fired := w.watch.on(w.releaseEvent("staging", n))
		return func() {
			if !w.within(fired, 90*time.Second) {
				return
			}
			m := fail500
			if w.frnd.IntN(2) == 0 {
				m = hang
			}
			w.proxyFault(m, 3000, 5000, classPulls, classAPI)
		}
	}},
	{"leadership-a-b-a", func(w *world, n int) func() { return w.moveLeadership }},
	{"webhook-storm", func(w *world, n int) func() {
		return func() {
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() { w.webhook(w.replicas[i%len(w.replicas)]) })
			}
			wg.Wait()
		}
	}},
}

// pause waits d (a fault's duration, not a synchronisation).
func (w *world) pause(d time.Duration) {
	select {
	case <-w.ctx.Done():
	case <-time.After(d):
	}
}

// within waits for ch, reporting false after d.
func (w *world) within(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		w.t.Logf("  the fault's trigger did not come within %s; the iteration runs without it", d)
		return false
	case <-w.ctx.Done():
		return false
	}
}

// killOn SIGKILLs the leader when ch fires, then restarts it after up to
// two seconds (a container restart).
func (w *world) killOn(ch <-chan struct{}, what string) {
	if !w.within(ch, 60*time.Second) {
		return
	}
	w.killLeader(what)
}

func (w *world) killLeader(what string) {
	r := w.leader()
	if r == nil {
		r = w.replicas[w.frnd.IntN(len(w.replicas))]
	}
	r.kill()
	w.t.Logf("  SIGKILL %s during %s", r.name, what)
	w.pause(time.Duration(w.frnd.IntN(2000)) * time.Millisecond)
	r.start()
}

// killHeld holds the first request of a class at the proxy, kills the
// leader while it waits for the answer, and then lets the request reach
// Gitea or drops it.
func (w *world) killHeld(c class) {
	w.proxy.set(hold, c)
	defer w.proxy.clear()
	ctx, cancel := context.WithTimeout(w.ctx, 90*time.Second)
	defer cancel()
	h, ok := w.proxy.awaitHeld(ctx)
	if !ok {
		w.t.Logf("  no %s request came within 90s; the iteration runs without the kill", c)
		return
	}
	forward := w.frnd.IntN(2) == 0
	w.proxy.set(pass, c)
	r := w.leader()
	if r == nil {
		r = w.replicas[w.frnd.IntN(len(w.replicas))]
	}
	r.kill()
	h.release <- forward
	w.t.Logf("  SIGKILL %s during a %s request (then %s)", r.name, c, map[bool]string{true: "delivered", false: "dropped"}[forward])
	w.pause(time.Duration(w.frnd.IntN(2000)) * time.Millisecond)
	r.start()
}

// proxyFault sets a proxy mode on classes for a random duration.
func (w *world) proxyFault(m mode, minMS, spreadMS int, classes ...class) {
	d := time.Duration(minMS+w.frnd.IntN(spreadMS)) * time.Millisecond
	w.proxy.set(m, classes...)
	w.t.Logf("  proxy: %s %v for %s", m, classes, d)
	w.pause(d)
	w.proxy.clear()
}

// moveLeadership moves the Lease A→B→A by freezing the leader (SIGSTOP)
// until the other leads, and back.
func (w *world) moveLeadership() {
	a := w.leader()
	if a == nil {
		w.t.Log("  no leader to move")
		return
	}
	b := w.replicas[0]
	if b == a {
		b = w.replicas[1]
	}
	for _, step := range [][2]*replica{{a, b}, {b, a}} {
		from, to := step[0], step[1]
		from.pause()
		ok := w.leading(to, 30*time.Second)
		from.resume()
		if !ok {
			w.t.Logf("  %s did not take over from the frozen %s within 30s", to.name, from.name)
			return
		}
		w.t.Logf("  leadership %s → %s", from.name, to.name)
	}
}

// iteration is one release through the pipeline under one fault.
type iteration struct {
	n       int
	fault   string
	took    time.Duration
	mergeBy string
}

// drive carries release n (commit c on env/dev) through the pipeline: it
// waits for the automatic promotion to staging and the pull request to
// prod, which it merges (with a merge commit or squashed), and returns how
// it merged.
func (w *world) drive(n int, c string, deadline time.Time) (string, error) {
	tree := w.baseTree(c)
	reached := func(envName string) bool {
		return w.fetch() == nil && w.baseTree(w.head(envName)) == tree
	}
	began := time.Now()
	if !waitFor(w.ctx, time.Until(deadline), func() bool { return reached("staging") }) {
		return "", fmt.Errorf("release %d never reached env/staging", n)
	}
	atStaging := time.Since(began)
	style := []string{"merge", "squash"}[w.rnd.IntN(2)]
	merged := waitFor(w.ctx, time.Until(deadline), func() bool {
		if reached("prod") {
			return true
		}
		prs, err := w.promotionPulls("open")
		if err != nil || len(prs) != 1 || w.fetch() != nil || w.baseTree(prs[0].Head.SHA) != tree {
			return false
		}
		_ = w.merge(prs[0], style) // not mergeable yet: the next round tries again
		return false
	})
	if !merged {
		return "", fmt.Errorf("release %d never reached env/prod", n)
	}
	w.t.Logf("  promoted to staging after %s, merged into prod after %s", atStaging.Round(100*time.Millisecond),
		time.Since(began).Round(100*time.Millisecond))
	return style, nil
}

// converged reports whether every environment's inventory is at its
// branch head, holds nothing pending and names exactly the head's objects,
// which all exist; why says what is missing.
func (w *world) converged() (ok bool, why string) {
	if err := w.fetch(); err != nil {
		return false, err.Error()
	}
	for _, e := range environments {
		head := w.head(e)
		inv, err := w.inventory(e)
		if err != nil {
			return false, err.Error()
		}
		if inv.Revision != head {
			return false, fmt.Sprintf("%s: inventory at %.12s, head %.12s", e, inv.Revision, head)
		}
		if len(inv.Pending) > 0 {
			return false, fmt.Sprintf("%s: %d pending entries", e, len(inv.Pending))
		}
		var entries []string
		for _, x := range inv.Entries {
			entries = append(entries, x.Kind+"/"+x.Name)
		}
		want := w.desired(head)
		if !sameSet(entries, want) {
			return false, fmt.Sprintf("%s: inventory %v, desired %v", e, entries, want)
		}
		live, err := w.live(e)
		if err != nil {
			return false, err.Error()
		}
		if !sameSet(live, want) {
			return false, fmt.Sprintf("%s: live %v, desired %v", e, live, want)
		}
	}
	return true, ""
}

// live lists an environment's objects in its namespace (Baton's label).
func (w *world) live(e string) ([]string, error) {
	sel := metav1.ListOptions{LabelSelector: "baton.dev/environment=" + e}
	cms, err := env.Clientset(w.t).CoreV1().ConfigMaps(w.ns[e]).List(w.ctx, sel)
	if err != nil {
		return nil, err
	}
	deps, err := env.Clientset(w.t).AppsV1().Deployments(w.ns[e]).List(w.ctx, sel)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cms.Items {
		out = append(out, "ConfigMap/"+c.Name)
	}
	for _, d := range deps.Items {
		out = append(out, "Deployment/"+d.Name)
	}
	return out, nil
}

var (
	rePromoted = regexp.MustCompile(`(?m)^Baton-Promoted-From: (\S+)@([0-9a-f]{40})`)
	reMarker   = regexp.MustCompile(`<!-- baton:promotion \S+ (\S+)@([0-9a-f]{40})`)
	// A squash merge through Gitea's API keeps the pull request's title
	// only: "promote staging@1a2b3c4 to prod (#7)".
	reSquash = regexp.MustCompile(`^promote (\S+)@([0-9a-f]{7,40}) to \S+ \(#\d+\)`)
)

// promotedSource names the source commit a promotion's message carries,
// as env@ and the first 7 digits (what every form gives), or "".
func promotedSource(msg string) string {
	for _, re := range []*regexp.Regexp{rePromoted, reMarker, reSquash} {
		if m := re.FindStringSubmatch(msg); m != nil {
			return m[1] + "@" + m[2][:7]
		}
	}
	return ""
}

// duplicatePromotions lists source commits promoted twice onto a branch's
// first-parent line (a merge counts by its merged parent's message), and
// counts the promotions found.
func (w *world) duplicatePromotions(envName string) (dups []string, promotions int) {
	// One git call for every commit's parents and message.
	out, err := w.gitErr("log", "--format=%H %P%x00%B%x1e", "refs/remotes/forge/"+branch(envName))
	if err != nil {
		return []string{err.Error()}, 0
	}
	type commit struct {
		parents []string
		message string
	}
	commits := map[string]commit{}
	for _, rec := range strings.Split(out, "\x1e") {
		head, msg, ok := strings.Cut(strings.TrimLeft(rec, "\n"), "\x00")
		if f := strings.Fields(head); ok && len(f) > 0 {
			commits[f[0]] = commit{parents: f[1:], message: msg}
		}
	}
	seen := map[string]int{}
	for h := w.head(envName); h != ""; {
		c, ok := commits[h]
		if !ok {
			break
		}
		msg := c.message
		if len(c.parents) == 2 {
			msg = commits[c.parents[1]].message
		}
		if src := promotedSource(msg); src != "" {
			seen[src]++
			promotions++
		}
		h = ""
		if len(c.parents) > 0 {
			h = c.parents[0]
		}
	}
	for src, n := range seen {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s promoted %d times onto %s", src, n, branch(envName)))
		}
	}
	return dups, promotions
}

// legitDeletion reports whether an object deleted at t was absent from a
// commit of its environment's branch made in the two minutes before.
func (w *world) legitDeletion(d deletion) bool {
	if slices.Contains(stableObjects, d.object) {
		return false
	}
	out, err := w.gitErr("log", "--first-parent", "--format=%H %ct", "refs/remotes/forge/"+branch(d.env))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(out, "\n") {
		hash, ts, _ := strings.Cut(line, " ")
		sec, _ := strconv.ParseInt(ts, 10, 64)
		at := time.Unix(sec, 0)
		if at.After(d.at.Add(2*time.Second)) || at.Before(d.at.Add(-2*time.Minute)) {
			continue
		}
		if !slices.Contains(w.desired(hash), d.object) {
			return true
		}
	}
	return false
}

// pendingRefs lists refs/baton/pending references in the replicas' git
// stores.
func (w *world) pendingRefs() []string {
	var out []string
	for _, r := range w.replicas {
		_ = filepath.WalkDir(r.cacheDir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			switch {
			case !d.IsDir() && strings.Contains(filepath.ToSlash(p), "/refs/baton/pending/"):
				out = append(out, r.name+": "+filepath.Base(p))
			case !d.IsDir() && d.Name() == "packed-refs":
				if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "refs/baton/pending/") {
					out = append(out, r.name+": packed "+p)
				}
			}
			return nil
		})
	}
	return out
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// defaultIterations keeps the suite within about two minutes in `make
// test` (each release takes 10-20s under -race); the seed picks which
// fault kinds run, so successive runs cover them all, and `make soak` runs
// every kind many times.
const defaultIterations = 5

// TestFaults runs releases through the pipeline, one fault each, and checks
// the invariants after each. BATON_FAULT_ITERATIONS sets how many (default
// defaultIterations; every kind runs once per round of len(faults)
// iterations, in a seeded order); BATON_FAULT_SEED replays a run.
func TestFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("BATON_FAULT_SEED"), 10, 64); err == nil {
		seed = s
	}
	iterations := envInt("BATON_FAULT_ITERATIONS", defaultIterations)
	t.Logf("seed %d (replay: BATON_FAULT_SEED=%d BATON_FAULT_ITERATIONS=%d go test -race -run TestFaults ./internal/faults/)",
		seed, seed, iterations)
	setup := time.Now()
	rnd := rand.New(rand.NewPCG(seed, seed>>1))
	w := newWorld(t, rnd, rand.New(rand.NewPCG(seed>>2, seed)))

	// The initial sync, before any fault.
	if !waitFor(w.ctx, 3*time.Minute, func() bool { ok, _ := w.converged(); return ok }) {
		_, why := w.converged()
		t.Fatalf("the initial sync did not converge: %s", why)
	}
	t.Logf("set up and synced in %s", time.Since(setup).Round(100*time.Millisecond))

	// Every kind once per round, in a seeded order.
	var order []fault
	for len(order) < iterations {
		for _, i := range rnd.Perm(len(faults)) {
			order = append(order, faults[i])
		}
	}
	order = order[:iterations]

	counts := map[string]int{}
	durations := map[string][]time.Duration{}
	var samples = map[string][]sample{}
	var own []int
	delIdx, forIdx := 0, 0
	checks := 0
	start := time.Now()
	for i, f := range order {
		n := w.release + 1
		t.Logf("iteration %d/%d: release %d, fault %s", i+1, iterations, n, f.name)
		began := time.Now()
		var faultDone sync.WaitGroup
		run := f.arm(w, n)
		commit := w.commitRelease()
		faultDone.Go(run)
		style, err := w.drive(n, commit, time.Now().Add(4*time.Minute))
		faultDone.Wait()
		w.watch.forget()
		w.proxy.clear()
		for _, r := range w.replicas {
			if bad, tail := r.exitedBadly(); bad {
				t.Fatalf("iteration %d: %s exited on its own:\n%s", i+1, r.name, tail)
			}
			if !r.running() {
				r.start()
			}
		}
		if err != nil {
			t.Fatalf("iteration %d (%s): %v", i+1, f.name, err)
		}

		// Invariant: converged within the bound.
		if !waitFor(w.ctx, 2*time.Minute, func() bool { ok, _ := w.converged(); return ok }) {
			_, why := w.converged()
			t.Fatalf("iteration %d (%s): did not converge within 2m after the fault: %s", i+1, f.name, why)
		}
		// Invariants: no object in git deleted, none of another
		// environment touched.
		dels, foreign, di, fi := w.watch.since(delIdx, forIdx)
		delIdx, forIdx = di, fi
		for _, d := range dels {
			if !w.legitDeletion(d) {
				t.Errorf("iteration %d (%s): %s of %s deleted at %s while git had it", i+1, f.name, d.object, d.env, d.at.Format(time.RFC3339Nano))
			}
		}
		for _, v := range foreign {
			t.Errorf("iteration %d (%s): %s", i+1, f.name, v)
		}
		// Invariants: at most one open promotion pull request (none once
		// merged), no promotion committed twice.
		if open, err := w.promotionPulls("open"); err != nil || len(open) > 0 {
			t.Errorf("iteration %d (%s): open promotion pull requests after the merge: %v %v", i+1, f.name, open, err)
		}
		for _, e := range []string{"staging", "prod"} {
			dups, found := w.duplicatePromotions(e)
			for _, d := range dups {
				t.Errorf("iteration %d (%s): %s", i+1, f.name, d)
			}
			// Every release lands once on each (the first commit is none).
			if found != w.release {
				t.Errorf("iteration %d (%s): %d promotions on %s, want %d", i+1, f.name, found, branch(e), w.release)
			}
		}
		// Invariant: no pending refs once the pipeline is idle.
		if !waitFor(w.ctx, 10*time.Second, func() bool { return len(w.pendingRefs()) == 0 }) {
			t.Errorf("iteration %d (%s): pending refs left: %v", i+1, f.name, w.pendingRefs())
		}
		checks += 7
		if t.Failed() {
			t.FailNow()
		}
		for _, r := range w.replicas {
			if s, err := r.sample(w.ctx, i+1); err == nil {
				samples[r.name] = append(samples[r.name], s)
			}
		}
		runtime.GC()
		own = append(own, runtime.NumGoroutine())
		counts[f.name]++
		took := time.Since(began)
		durations[f.name] = append(durations[f.name], took)
		t.Logf("  converged in %s (merged by %s)", took.Round(100*time.Millisecond), style)
	}

	// Invariant: goroutines and memory flat across iterations, per process.
	report(t, counts, durations, samples, own, checks, time.Since(start))
	for _, r := range w.replicas {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}
}

// report logs the figures and fails on growth: for every process that lived
// through at least six iterations, the last third's goroutines may exceed
// the first third's by at most 25% (plus 20), and its heap by at most 2x
// (plus 16 MiB).
func report(t *testing.T, counts map[string]int, durations map[string][]time.Duration, samples map[string][]sample, own []int, checks int, took time.Duration) {
	var kinds []string
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%d iterations in %s, %d invariant checks, 0 violations\n", sumCounts(counts), took.Round(time.Second), checks)
	fmt.Fprintf(&b, "  %-28s %5s  %s\n", "fault", "runs", "release to converged: min / median / max")
	for _, k := range kinds {
		d := slices.Clone(durations[k])
		slices.Sort(d)
		fmt.Fprintf(&b, "  %-28s %5d  %s / %s / %s\n", k, counts[k], d[0].Round(100*time.Millisecond),
			d[len(d)/2].Round(100*time.Millisecond), d[len(d)-1].Round(100*time.Millisecond))
	}
	type key struct {
		name        string
		incarnation int
		role        string
	}
	groups := map[key][]sample{}
	var keys []key
	for name, ss := range samples {
		for _, s := range ss {
			k := key{name, s.incarnation, s.role}
			if groups[k] == nil {
				keys = append(keys, k)
			}
			groups[k] = append(groups[k], s)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j])
	})
	for _, k := range keys {
		list := groups[k]
		if len(list) < 6 {
			continue
		}
		third := len(list) / 3
		first, last := avg(list[:third]), avg(list[len(list)-third:])
		fmt.Fprintf(&b, "  %s process %d as %s (%d iterations, %d to %d): goroutines %.0f → %.0f, heap %.1f → %.1f MiB, rss %.1f → %.1f MiB\n",
			k.name, k.incarnation, k.role, len(list), list[0].iteration, list[len(list)-1].iteration, first.goroutines, last.goroutines,
			first.heap/(1<<20), last.heap/(1<<20), first.rss/(1<<20), last.rss/(1<<20))
		if last.goroutines > first.goroutines*1.25+20 {
			t.Errorf("%s process %d as %s: goroutines grew from %.0f to %.0f", k.name, k.incarnation, k.role, first.goroutines, last.goroutines)
		}
		if last.heap > first.heap*2+16<<20 {
			t.Errorf("%s process %d as %s: heap grew from %.1f to %.1f MiB", k.name, k.incarnation, k.role, first.heap/(1<<20), last.heap/(1<<20))
		}
	}
	if len(own) >= 6 {
		third := len(own) / 3
		a, z := mean(own[:third]), mean(own[len(own)-third:])
		fmt.Fprintf(&b, "  test process goroutines %.0f → %.0f\n", a, z)
		if z > a*1.25+20 {
			t.Errorf("the test's own goroutines grew from %.0f to %.0f", a, z)
		}
	}
	t.Log(b.String())
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func avg(ss []sample) sample {
	var a sample
	for _, s := range ss {
		a.goroutines += s.goroutines / float64(len(ss))
		a.heap += s.heap / float64(len(ss))
		a.rss += s.rss / float64(len(ss))
	}
	return a
}

func mean(xs []int) float64 {
	s := 0.0
	for _, x := range xs {
		s += float64(x)
	}
	return s / float64(len(xs))
}
