package metrics_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/metrics"
)

// clock is a settable time for the durations the recorder measures.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry, *clock) {
	t.Helper()
	c := &clock{t: t0}
	m, reg := metrics.New(metrics.Options{Now: c.now, NoProcessCollectors: true})
	return m, reg, c
}

// value returns the value of the one series of name whose labels include
// want, failing when there is none or several. Counters, gauges and, for
// histograms, the sample count.
func value(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	var found []float64
	for _, m := range series(t, reg, name) {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			found = append(found, m.Counter.GetValue())
		case m.Gauge != nil:
			found = append(found, m.Gauge.GetValue())
		case m.Histogram != nil:
			found = append(found, float64(m.Histogram.GetSampleCount()))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

// sum returns the sum of a histogram series.
func sum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	for _, m := range series(t, reg, name) {
		if hasLabels(m, want) && m.Histogram != nil {
			return m.Histogram.GetSampleSum()
		}
	}
	t.Fatalf("%s%v: no histogram", name, want)
	return 0
}

func series(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func env(name string) map[string]string { return map[string]string{"environment": name} }

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func success(envName, rev string, commitTime time.Time) agent.SyncRecord {
	return agent.SyncRecord{Environment: envName, Branch: "env/" + envName, Revision: rev, CommitTime: commitTime,
		Result: agent.SyncSucceeded, Duration: 2 * time.Second, RenderDuration: 500 * time.Millisecond,
		ApplyDuration: time.Second, Objects: 7, Counts: map[string]int{"created": 3, "unchanged": 4},
		Interval: time.Minute, DriftMode: "correct"}
}

func TestNewRegistersEveryMetricAndTheProcessCollectors(t *testing.T) {
	m, reg := metrics.New(metrics.Options{})
	m.SyncDone(success("dev", "a1", t0))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"baton_sync_total", "baton_leader", "baton_synced_revision_info"} {
		if !names[want] {
			t.Errorf("%s not gathered", want)
		}
	}
	for n := range names {
		if !strings.HasPrefix(n, "baton_") && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			t.Errorf("unexpected metric %s", n)
		}
	}
	// Two instances do not collide: nothing is registered globally.
	metrics.New(metrics.Options{})
}

func TestSyncPasses(t *testing.T) {
	m, reg, c := newMetrics(t)
	m.SyncDone(success("dev", "a1", t0.Add(-time.Hour)))
	if got := value(t, reg, "baton_sync_total", labels("environment", "dev", "result", "success")); got != 1 {
		t.Errorf("success count %v", got)
	}
	// The other results exist at zero, so rate() sees their first increment.
	if got := value(t, reg, "baton_sync_total", labels("environment", "dev", "result", "failure")); got != 0 {
		t.Errorf("failure count %v", got)
	}
	if got := value(t, reg, "baton_last_sync_timestamp_seconds", env("dev")); got != float64(t0.Unix()) {
		t.Errorf("last sync %v, want %v", got, t0.Unix())
	}
	if got := value(t, reg, "baton_apply_objects_total", labels("environment", "dev", "action", "created")); got != 3 {
		t.Errorf("created %v", got)
	}
	if got := value(t, reg, "baton_managed_objects", env("dev")); got != 7 {
		t.Errorf("managed %v", got)
	}
	if got := value(t, reg, "baton_sync_interval_seconds", env("dev")); got != 60 {
		t.Errorf("interval %v", got)
	}
	if got := sum(t, reg, "baton_sync_duration_seconds", env("dev")); got != 2 {
		t.Errorf("duration sum %v", got)
	}

	// Two failures: render, then apply.
	c.advance(time.Minute)
	m.SyncDone(agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: "b2", Result: agent.SyncFailed,
		FailedStage: agent.StageRender, Duration: time.Second, RenderDuration: time.Second})
	m.SyncDone(agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: "b2", Result: agent.SyncFailed,
		FailedStage: agent.StageApply, Duration: time.Second, ApplyDuration: time.Second})
	if got := value(t, reg, "baton_sync_consecutive_failures", env("dev")); got != 2 {
		t.Errorf("consecutive failures %v", got)
	}
	if got := value(t, reg, "baton_render_errors_total", env("dev")); got != 1 {
		t.Errorf("render errors %v", got)
	}
	if got := value(t, reg, "baton_sync_failures_total", labels("environment", "dev", "stage", "apply")); got != 1 {
		t.Errorf("apply failures %v", got)
	}
	// Refusals: a revision outside the scope, a bomb; a rule outside the
	// closed set is "other".
	for _, rule := range []string{"namespace", "aliases", "namespace", "free text"} {
		m.SyncDone(agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: "b2", Result: agent.SyncFailed,
			FailedStage: agent.StageApply, Refused: rule})
	}
	for rule, want := range map[string]float64{"namespace": 2, "aliases": 1, "other": 1} {
		if got := value(t, reg, "baton_sync_refused_total", labels("environment", "dev", "rule", rule)); got != want {
			t.Errorf("refused %s %v, want %v", rule, got, want)
		}
	}
	// A failure keeps the last good sync and revision.
	if got := value(t, reg, "baton_last_sync_timestamp_seconds", env("dev")); got != float64(t0.Unix()) {
		t.Errorf("last sync moved on a failure: %v", got)
	}
	if got := value(t, reg, "baton_synced_revision_info", labels("environment", "dev", "revision", "a1")); got != 1 {
		t.Errorf("revision info %v", got)
	}

	// A source failure did not render: no render duration observed.
	before := value(t, reg, "baton_render_duration_seconds", env("dev"))
	m.SyncDone(agent.SyncRecord{Environment: "dev", Result: agent.SyncFailed, FailedStage: agent.StageSource})
	if after := value(t, reg, "baton_render_duration_seconds", env("dev")); after != before {
		t.Errorf("render observed for a source failure: %v -> %v", before, after)
	}

	// Success again resets the failures; suspension shows.
	m.SyncDone(success("dev", "b2", t0))
	if got := value(t, reg, "baton_sync_consecutive_failures", env("dev")); got != 0 {
		t.Errorf("consecutive failures after success %v", got)
	}
	m.SyncDone(agent.SyncRecord{Environment: "dev", Result: agent.SyncSuspended})
	if got := value(t, reg, "baton_suspended", env("dev")); got != 1 {
		t.Errorf("suspended %v", got)
	}
}

func TestRevisionInfoKeepsOneSeriesPerEnvironment(t *testing.T) {
	m, reg, _ := newMetrics(t)
	for _, rev := range []string{"a1", "b2", "c3", "c3"} {
		m.SyncDone(success("dev", rev, t0))
		m.SyncDone(success("prod", "p"+rev, t0))
	}
	want := `
# HELP baton_synced_revision_info 1 for the revision in the cluster: one series per environment.
# TYPE baton_synced_revision_info gauge
baton_synced_revision_info{branch="env/dev",environment="dev",revision="c3"} 1
baton_synced_revision_info{branch="env/prod",environment="prod",revision="pc3"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "baton_synced_revision_info"); err != nil {
		t.Error(err)
	}
	// a1 was the state found at start; b2 and c3 are deployments, the
	// repeated c3 is not.
	if got := value(t, reg, "baton_deployments_total", env("dev")); got != 2 {
		t.Errorf("deployments %v, want 2", got)
	}
}

func TestDriftModeLabelFollowsTheSetting(t *testing.T) {
	m, reg, _ := newMetrics(t)
	r := success("prod", "a1", t0)
	r.Drifted, r.DriftMode = 2, "detect-only"
	m.SyncDone(r)
	if got := value(t, reg, "baton_drifted_objects", labels("environment", "prod", "mode", "detect-only")); got != 2 {
		t.Errorf("drifted %v", got)
	}
	r.DriftMode, r.Drifted = "", 1 // the default is correct
	m.SyncDone(r)
	if n := len(series(t, reg, "baton_drifted_objects")); n != 1 {
		t.Errorf("%d drift series after the mode changed, want 1", n)
	}
	if got := value(t, reg, "baton_drifted_objects", labels("environment", "prod", "mode", "correct")); got != 1 {
		t.Errorf("drifted %v", got)
	}
}

func TestHealthAndDORA(t *testing.T) {
	m, reg, c := newMetrics(t)
	m.SyncDone(success("dev", "a1", t0.Add(-time.Hour))) // found at start: no deployment
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "a1", Status: "Healthy"})
	if got := value(t, reg, "baton_change_lead_time_seconds", env("dev")); got != 0 {
		t.Errorf("lead time observed %v times for the revision found at start", got)
	}

	// b2 committed 10 minutes ago is deployed, progresses, then is healthy.
	m.SyncDone(success("dev", "b2", t0.Add(-10*time.Minute)))
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "b2", Status: "Progressing"})
	c.advance(2 * time.Minute)
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "b2", Status: "Healthy", WaitDuration: 2 * time.Minute})
	if got := sum(t, reg, "baton_change_lead_time_seconds", env("dev")); got != 12*60 {
		t.Errorf("lead time %vs, want 720", got)
	}
	if got := value(t, reg, "baton_health_status", labels("environment", "dev", "status", "healthy")); got != 1 {
		t.Errorf("healthy gauge %v", got)
	}
	if got := value(t, reg, "baton_health_status", labels("environment", "dev", "status", "progressing")); got != 0 {
		t.Errorf("progressing gauge %v", got)
	}

	// c3 crashes: a change failure and a failure by cause, once each even
	// when the verdict repeats with another message.
	m.SyncDone(success("dev", "c3", t0))
	c.advance(time.Minute)
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "c3", Status: "Degraded", Cause: "crashloop"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "c3", Status: "Degraded", Cause: "crashloop"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "c3", Status: "Degraded", Cause: "oomkilled"})
	if got := value(t, reg, "baton_change_failures_total", env("dev")); got != 1 {
		t.Errorf("change failures %v, want 1", got)
	}
	if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", "crashloop")); got != 1 {
		t.Errorf("crashloop failures %v", got)
	}
	if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", "oomkilled")); got != 1 {
		t.Errorf("oomkilled failures %v", got)
	}

	// d4 fixes it 5 minutes later: time to restore.
	c.advance(5 * time.Minute)
	m.SyncDone(success("dev", "d4", t0))
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "d4", Status: "Progressing"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "d4", Status: "Healthy"})
	if got := sum(t, reg, "baton_time_to_restore_seconds", env("dev")); got != 300 {
		t.Errorf("time to restore %vs, want 300", got)
	}
	if got := value(t, reg, "baton_deployments_total", env("dev")); got != 3 {
		t.Errorf("deployments %v, want 3", got)
	}

	// A revert is a change failure too.
	r := success("dev", "e5", t0)
	r.Revert = true
	m.SyncDone(r)
	if got := value(t, reg, "baton_change_failures_total", env("dev")); got != 2 {
		t.Errorf("change failures after a revert %v, want 2", got)
	}

	// The causes real clusters need beyond the first set are in the
	// closed set, pre-registered at zero and counted under their name.
	for _, cause := range []string{"evicted", "volume"} {
		if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", cause)); got != 0 {
			t.Errorf("%s failures before any %v, want a series at 0", cause, got)
		}
	}
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "e5", Status: "Degraded", Cause: "evicted"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "e5", Status: "Healthy"})
	if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", "evicted")); got != 1 {
		t.Errorf("evicted failures %v, want 1", got)
	}

	// A cause outside the closed set is "other"; none found is "unknown".
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "e5", Status: "Degraded", Cause: "a new kind of trouble"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "e5", Status: "Healthy"})
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "e5", Status: "Degraded"})
	if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", "other")); got != 1 {
		t.Errorf("other cause %v", got)
	}
	if got := value(t, reg, "baton_health_failures_total", labels("environment", "dev", "cause", "unknown")); got != 1 {
		t.Errorf("unknown cause %v", got)
	}
}

func TestPromotions(t *testing.T) {
	m, reg, c := newMetrics(t)
	m.SyncDone(success("staging", "s0", t0))
	m.SyncDone(success("dev", "d0", t0))
	m.SyncDone(success("dev", "d1", t0.Add(-3*time.Minute)))
	edge := labels("from", "dev", "to", "staging")

	for range 3 { // the agent evaluates after every pass: repeats count once
		m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "d1", Outcome: agent.PromotionBlocked, Reason: "soak"})
	}
	if got := value(t, reg, "baton_promotions_total", labels("from", "dev", "to", "staging", "result", "blocked")); got != 1 {
		t.Errorf("blocked count %v, want 1", got)
	}
	if got := value(t, reg, "baton_promotion_pending", edge); got != 1 {
		t.Errorf("pending %v", got)
	}

	m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "d1", Outcome: agent.PromotionFrozen})
	if value(t, reg, "baton_promotion_frozen", edge) != 1 || value(t, reg, "baton_promotion_pending", edge) != 0 {
		t.Error("frozen promotion: want frozen 1, pending 0")
	}
	m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "d1", Outcome: agent.PromotionHeld})
	if value(t, reg, "baton_promotion_held", edge) != 1 || value(t, reg, "baton_promotion_frozen", edge) != 0 {
		t.Error("held promotion: want held 1, frozen 0")
	}

	// Pushed; staging syncs the promotion commit and is healthy 2 minutes
	// later: lead time from d1's commit time, 3 + 2 minutes.
	m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "d1", Outcome: agent.PromotionPushed})
	if value(t, reg, "baton_promotion_pending", edge) != 0 || value(t, reg, "baton_promotion_held", edge) != 0 {
		t.Error("pushed promotion: want pending 0, held 0")
	}
	m.HealthChanged(agent.HealthRecord{Environment: "staging", Revision: "s0", Status: "Healthy"}) // the old revision
	if got := value(t, reg, "baton_promotion_lead_time_seconds", edge); got != 0 {
		t.Fatalf("lead time observed %v times on the old target revision", got)
	}
	c.advance(2 * time.Minute)
	m.SyncDone(success("staging", "s1", t0))
	m.HealthChanged(agent.HealthRecord{Environment: "staging", Revision: "s1", Status: "Healthy"})
	if got := sum(t, reg, "baton_promotion_lead_time_seconds", edge); got != 300 {
		t.Errorf("promotion lead time %vs, want 300", got)
	}
	m.HealthChanged(agent.HealthRecord{Environment: "staging", Revision: "s1", Status: "Healthy"})
	if got := value(t, reg, "baton_promotion_lead_time_seconds", edge); got != 1 {
		t.Errorf("%v lead time observations, want 1", got)
	}
	m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "d1", Outcome: "something new"})
	if got := value(t, reg, "baton_promotions_total", labels("from", "dev", "to", "staging", "result", "other")); got != 1 {
		t.Errorf("unknown outcome counted as %v under other", got)
	}
}

func TestGitOperations(t *testing.T) {
	m, reg, _ := newMetrics(t)
	const repo = "https://git.example.com/acme/deploy.git"
	m.ObserveGitOperation(repo, "ls-remote", 20*time.Millisecond, "")
	m.ObserveGitOperation(repo, "fetch", 300*time.Millisecond, "")
	m.ObserveGitOperation(repo, "ls-remote", time.Second, "auth")
	m.ObserveGitOperation(repo, "push", time.Second, "lease_lost")
	m.ObserveGitOperation(repo, "verify", time.Millisecond, "signature")
	m.ObserveGitOperation(repo, "fetch", time.Second, "a kind added later")
	if got := value(t, reg, "baton_git_fetch_duration_seconds", labels("repository", repo, "operation", "ls-remote")); got != 2 {
		t.Errorf("ls-remote observations %v", got)
	}
	if got := value(t, reg, "baton_git_push_duration_seconds", labels("repository", repo)); got != 1 {
		t.Errorf("push observations %v", got)
	}
	for _, tc := range []struct{ op, kind string }{{"ls-remote", "auth"}, {"push", "lease_lost"}, {"verify", "signature"}, {"fetch", "other"}} {
		if got := value(t, reg, "baton_git_errors_total", labels("repository", repo, "operation", tc.op, "kind", tc.kind)); got != 1 {
			t.Errorf("%s %s errors %v", tc.op, tc.kind, got)
		}
	}
	// The other kinds exist at zero, so increase() sees a first auth error.
	if got := value(t, reg, "baton_git_errors_total", labels("repository", repo, "operation", "fetch", "kind", "auth")); got != 0 {
		t.Errorf("fetch auth errors %v", got)
	}
}

func TestLosingTheLeadDropsGauges(t *testing.T) {
	m, reg, _ := newMetrics(t)
	m.LeaderChanged(true)
	m.SyncDone(success("dev", "a1", t0))
	m.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: "a1", Status: "Healthy"})
	m.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: "a1", Outcome: agent.PromotionBlocked})
	if got := value(t, reg, "baton_leader", nil); got != 1 {
		t.Errorf("leader %v", got)
	}
	m.LeaderChanged(false)
	for _, name := range []string{"baton_synced_revision_info", "baton_last_sync_timestamp_seconds", "baton_health_status",
		"baton_promotion_pending", "baton_drifted_objects", "baton_sync_interval_seconds", "baton_managed_objects"} {
		if n := len(series(t, reg, name)); n != 0 {
			t.Errorf("%s: %d series left on a standby", name, n)
		}
	}
	if got := value(t, reg, "baton_sync_total", labels("environment", "dev", "result", "success")); got != 1 {
		t.Errorf("counters must stay: sync total %v", got)
	}
	if got := value(t, reg, "baton_leader", nil); got != 0 {
		t.Errorf("leader %v", got)
	}
	// A new leadership starts afresh: its first revision is not a deployment.
	m.LeaderChanged(true)
	m.SyncDone(success("dev", "b2", t0))
	if got := value(t, reg, "baton_deployments_total", env("dev")); got != 0 {
		t.Errorf("deployments after a takeover %v, want 0", got)
	}
}

func TestConcurrentRecording(t *testing.T) {
	m, reg, _ := newMetrics(t)
	var wg sync.WaitGroup
	for i := range 8 {
		name := []string{"dev", "staging"}[i%2]
		wg.Go(func() {
			for j := range 200 {
				rev := []string{"a", "b"}[j%2]
				m.SyncDone(success(name, rev, t0))
				m.HealthChanged(agent.HealthRecord{Environment: name, Revision: rev, Status: []string{"Healthy", "Degraded"}[j%2]})
				m.PromotionDone(agent.PromotionRecord{From: name, To: "prod", Revision: rev, Outcome: agent.PromotionBlocked})
				m.ObserveGitOperation("repo", "fetch", time.Millisecond, "")
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if got := value(t, reg, "baton_sync_total", labels("environment", "dev", "result", "success")); got != 800 {
		t.Errorf("dev syncs %v, want 800", got)
	}
}

// BenchmarkSyncDone measures the cost of recording one sync pass: the agent
// calls it in its loop, so it must stay far below a millisecond.
func BenchmarkSyncDone(b *testing.B) {
	m, _ := metrics.New(metrics.Options{NoProcessCollectors: true})
	recs := []agent.SyncRecord{success("dev", "a1", t0), success("dev", "b2", t0)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.SyncDone(recs[i%2])
	}
}

// The revision the cluster had before an agent started (the inventory's,
// SyncRecord.PreviousRevision) tells a deployment made while no agent ran
// from the state found at start.
func TestFirstSyncAfterStartCountsAgainstTheInventory(t *testing.T) {
	m, reg, _ := newMetrics(t)
	same := success("dev", "a1", t0.Add(-time.Hour))
	same.PreviousRevision = "a1"
	m.SyncDone(same)
	if got := value(t, reg, "baton_deployments_total", env("dev")); got != 0 {
		t.Errorf("the state found at start counted as %v deployments", got)
	}

	m2, reg2, _ := newMetrics(t)
	merged := success("prod", "b2", t0.Add(-10*time.Minute))
	merged.PreviousRevision = "a1"
	m2.SyncDone(merged)
	if got := value(t, reg2, "baton_deployments_total", env("prod")); got != 1 {
		t.Errorf("a revision merged while no agent ran counted as %v deployments, want 1", got)
	}
	m2.HealthChanged(agent.HealthRecord{Environment: "prod", Revision: "b2", Status: "Healthy"})
	if got := value(t, reg2, "baton_change_lead_time_seconds", env("prod")); got != 1 {
		t.Errorf("lead time observed %v times, want 1", got)
	}
}

// Many pipelines on one agent: each environment's pipeline is named by
// baton_environment_info, and promotion series carry it.
func TestPipelineLabels(t *testing.T) {
	m, reg := metrics.New(metrics.Options{})
	rec := success("billing-dev", "a1", t0)
	rec.Pipeline = "billing"
	m.SyncDone(rec)
	m.SyncDone(success("dev", "b1", t0))
	if got := value(t, reg, "baton_environment_info", labels("environment", "billing-dev", "pipeline", "billing")); got != 1 {
		t.Errorf("billing-dev's info = %v", got)
	}
	if got := value(t, reg, "baton_environment_info", labels("environment", "dev", "pipeline", "")); got != 1 {
		t.Errorf("dev's info (no pipeline) = %v", got)
	}
	m.PromotionDone(agent.PromotionRecord{From: "billing-dev", To: "billing-prod", Pipeline: "billing", Revision: "a1",
		Outcome: agent.PromotionBlocked})
	if got := value(t, reg, "baton_promotions_total", labels("pipeline", "billing", "from", "billing-dev", "result", "blocked")); got != 1 {
		t.Errorf("blocked promotions of billing = %v", got)
	}
	if got := value(t, reg, "baton_promotion_pending", labels("pipeline", "billing", "to", "billing-prod")); got != 1 {
		t.Errorf("pending = %v", got)
	}
}
