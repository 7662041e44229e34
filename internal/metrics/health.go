package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-gitops/baton/internal/agent"
)

type healthMetrics struct {
	status   *prometheus.GaugeVec
	failures *prometheus.CounterVec
	wait     *prometheus.HistogramVec
}

func newHealthMetrics(reg prometheus.Registerer) healthMetrics {
	h := healthMetrics{
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_health_status",
			Help: "1 for the environment's current health status (healthy, progressing, degraded, unknown), 0 for the others."},
			[]string{"environment", "status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_health_failures_total",
			Help: "Transitions to degraded, by the cause found: crashloop, oomkilled, imagepull, configerror, volume, probe, unschedulable, evicted, quota, forbidden, deadline, jobfailed, timeout, unknown."},
			[]string{"environment", "cause"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_health_wait_duration_seconds",
			Help: "Time from the end of a sync to the health verdict on its objects.", Buckets: syncBuckets},
			[]string{"environment"}),
	}
	reg.MustRegister(h.status, h.failures, h.wait)
	return h
}

// HealthChanged records an environment's new health verdict, and from the
// sequence of verdicts the DORA lead time, change failures and time to
// restore.
func (m *Metrics) HealthChanged(r agent.HealthRecord) {
	if r.Status == "Cancelled" {
		return // an interrupted wait: no verdict
	}
	env := r.Environment
	status := healthStatus(r.Status)
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.envLocked(env)
	for _, s := range healthStatuses {
		v := 0.0
		if s == status {
			v = 1
		}
		m.health.status.WithLabelValues(env, s).Set(v)
	}
	if r.WaitDuration > 0 {
		m.health.wait.WithLabelValues(env).Observe(r.WaitDuration.Seconds())
	}

	switch status {
	case "degraded":
		if st.degradedSince.IsZero() {
			st.degradedSince = now
		}
		cause := healthCause(r.Cause)
		if st.status != "degraded" || st.cause != cause || st.causeRevision != r.Revision {
			m.health.failures.WithLabelValues(env, cause).Inc()
			st.cause, st.causeRevision = cause, r.Revision
		}
		// Only a revision this agent deployed is a change; the state it
		// found at start-up is not.
		if r.Revision != "" && r.Revision == st.deployed && st.failedRevision != r.Revision {
			m.dora.changeFailures.WithLabelValues(env).Inc()
			st.failedRevision = r.Revision
		}
	case "healthy":
		if !st.degradedSince.IsZero() {
			m.dora.timeToRestore.WithLabelValues(env).Observe(now.Sub(st.degradedSince).Seconds())
			st.degradedSince = time.Time{}
		}
		if st.leadPending && r.Revision == st.deployed {
			if !st.commitTime.IsZero() {
				m.dora.leadTime.WithLabelValues(env).Observe(now.Sub(st.commitTime).Seconds())
			}
			st.leadPending = false
		}
		m.landedLocked(env, r.Revision, now)
	}
	st.status = status
}

// forget deletes the gauges of env (see LeaderChanged).
func (h healthMetrics) forget(env string) {
	h.status.DeletePartialMatch(prometheus.Labels{"environment": env})
}
