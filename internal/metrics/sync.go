package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-gitops/baton/internal/agent"
)

// Buckets for a sync pass and its stages: from a no-op pass on a small
// environment to the default five-minute sync timeout.
var syncBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

type syncMetrics struct {
	total, failures, applyObjects       *prometheus.CounterVec
	pruned, renderErrors, refused       *prometheus.CounterVec
	duration, applyDuration, renderTime *prometheus.HistogramVec
	consecutiveFailures, interval       *prometheus.GaugeVec
	lastSync, revisionInfo, info        *prometheus.GaugeVec
	managed, drifted, suspended         *prometheus.GaugeVec
}

func newSyncMetrics(reg prometheus.Registerer) syncMetrics {
	env := []string{"environment"}
	s := syncMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_sync_total",
			Help: "Sync passes by result: success, failure or suspended."}, []string{"environment", "result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_sync_failures_total",
			Help: "Failed sync passes by the stage that failed: source, render or apply."}, []string{"environment", "stage"}),
		applyObjects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_apply_objects_total",
			Help: "Objects by what a sync pass did to them: created, configured, unchanged, deleted, recreated, skipped, drifted, failed."},
			[]string{"environment", "action"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_pruned_objects_total",
			Help: "Objects deleted because they left git."}, env),
		renderErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_render_errors_total",
			Help: "Sync passes whose Kustomize render failed."}, env),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_sync_refused_total",
			Help: "Revisions refused before anything was applied, by the rule or limit broken: namespace, cluster-kind, protected, ownership, file-size, objects, aliases, memory, time."},
			[]string{"environment", "rule"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_sync_duration_seconds",
			Help: "Duration of a whole sync pass: render, apply, prune.", Buckets: syncBuckets}, env),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_apply_duration_seconds",
			Help: "Duration of the apply, prune and inventory part of a sync pass.", Buckets: syncBuckets}, env),
		renderTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_render_duration_seconds",
			Help: "Duration of the Kustomize render of a sync pass.", Buckets: syncBuckets}, env),
		consecutiveFailures: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_sync_consecutive_failures",
			Help: "Failed sync passes since the last successful one."}, env),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_sync_interval_seconds",
			Help: "The environment's poll interval: a working agent syncs at least this often."}, env),
		lastSync: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_last_sync_timestamp_seconds",
			Help: "Unix time of the end of the last successful sync pass."}, env),
		revisionInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_synced_revision_info",
			Help: "1 for the revision in the cluster: one series per environment."}, []string{"environment", "branch", "revision"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_environment_info",
			Help: "1 per environment this replica syncs, naming its pipeline (application or team; empty when in none): join on environment to sum per-environment metrics by pipeline."},
			[]string{"environment", "pipeline"}),
		managed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_managed_objects",
			Help: "Objects rendered and applied by the last successful sync pass."}, env),
		drifted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_drifted_objects",
			Help: "Objects found drifted (changed or deleted by hand) by the last successful sync pass, by drift mode: correct or detect-only."},
			[]string{"environment", "mode"}),
		suspended: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_suspended",
			Help: "1 while the environment is suspended (nothing is applied)."}, env),
	}
	reg.MustRegister(s.total, s.failures, s.applyObjects, s.pruned, s.renderErrors, s.refused, s.duration, s.applyDuration,
		s.renderTime, s.consecutiveFailures, s.interval, s.lastSync, s.revisionInfo, s.info, s.managed, s.drifted, s.suspended)
	return s
}

// SyncDone records one sync pass.
func (m *Metrics) SyncDone(r agent.SyncRecord) {
	env := r.Environment
	result := bounded(r.Result, syncResults)
	s := m.sync
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.envLocked(env) // first, so the counters exist at zero
	s.total.WithLabelValues(env, result).Inc()
	if st.pipeline != r.Pipeline || !st.infoSet {
		s.info.DeletePartialMatch(prometheus.Labels{"environment": env})
		s.info.WithLabelValues(env, r.Pipeline).Set(1)
		st.pipeline, st.infoSet = r.Pipeline, true
	}
	s.duration.WithLabelValues(env).Observe(r.Duration.Seconds())
	if r.Interval > 0 {
		s.interval.WithLabelValues(env).Set(r.Interval.Seconds())
	}
	if r.FailedStage != agent.StageSource && result != "suspended" {
		// The render ran (and failed or succeeded).
		s.renderTime.WithLabelValues(env).Observe(r.RenderDuration.Seconds())
	}
	if r.FailedStage == agent.StageRender {
		s.renderErrors.WithLabelValues(env).Inc()
	}
	if r.Refused != "" {
		s.refused.WithLabelValues(env, bounded(r.Refused, refusalRules)).Inc()
	}
	if r.ApplyDuration > 0 {
		s.applyDuration.WithLabelValues(env).Observe(r.ApplyDuration.Seconds())
	}
	for action, n := range r.Counts {
		if n > 0 {
			s.applyObjects.WithLabelValues(env, bounded(action, applyActions)).Add(float64(n))
		}
	}
	if r.Pruned > 0 {
		s.pruned.WithLabelValues(env).Add(float64(r.Pruned))
	}

	switch result {
	case "failure":
		s.failures.WithLabelValues(env, bounded(r.FailedStage, syncStages)).Inc()
		s.consecutiveFailures.WithLabelValues(env).Inc()
		s.suspended.WithLabelValues(env).Set(0)
	case "suspended":
		s.suspended.WithLabelValues(env).Set(1)
		s.consecutiveFailures.WithLabelValues(env).Set(0)
	case "success":
		s.suspended.WithLabelValues(env).Set(0)
		s.consecutiveFailures.WithLabelValues(env).Set(0)
		s.lastSync.WithLabelValues(env).Set(float64(m.now().UnixNano()) / 1e9)
		s.managed.WithLabelValues(env).Set(float64(r.Objects))
		mode := driftMode(r.DriftMode)
		if st.driftMode != "" && st.driftMode != mode {
			s.drifted.DeleteLabelValues(env, st.driftMode)
		}
		st.driftMode = mode
		s.drifted.WithLabelValues(env, mode).Set(float64(r.Drifted))
		m.syncedLocked(st, r)
	}
}

// syncedLocked records the revision now in the cluster: the info series
// and, for a new revision, the DORA deployment.
func (m *Metrics) syncedLocked(st *envState, r agent.SyncRecord) {
	if r.Revision == "" || (r.Revision == st.revision && r.Branch == st.branch) {
		return
	}
	// The revision before this one: the one this recorder saw last, or,
	// for the first sync since it started, the one the cluster had (a
	// merge while no agent ran is a deployment too).
	previous := st.revision
	if previous == "" {
		previous = r.PreviousRevision
	}
	if st.revision != "" {
		m.sync.revisionInfo.DeleteLabelValues(r.Environment, st.branch, st.revision)
	}
	if previous != "" {
		if r.Revision != previous {
			m.dora.deployments.WithLabelValues(r.Environment).Inc()
			st.deployed, st.leadPending = r.Revision, true
			if r.Revert {
				// A revert undoes a change that failed in production
				// terms, whether or not Baton saw it degrade.
				m.dora.changeFailures.WithLabelValues(r.Environment).Inc()
			}
		}
	}
	st.branch, st.revision, st.commitTime = r.Branch, r.Revision, r.CommitTime
	m.sync.revisionInfo.WithLabelValues(r.Environment, r.Branch, r.Revision).Set(1)
}

// forget deletes the gauges of env (see LeaderChanged).
func (s syncMetrics) forget(env string) {
	s.consecutiveFailures.DeleteLabelValues(env)
	s.interval.DeleteLabelValues(env)
	s.lastSync.DeleteLabelValues(env)
	s.managed.DeleteLabelValues(env)
	s.suspended.DeleteLabelValues(env)
	s.drifted.DeletePartialMatch(prometheus.Labels{"environment": env})
	s.revisionInfo.DeletePartialMatch(prometheus.Labels{"environment": env})
	s.info.DeletePartialMatch(prometheus.Labels{"environment": env})
}
