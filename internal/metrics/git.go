package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Buckets for git network operations: a no-op ls-remote on a LAN to a
// full fetch at the default one-minute timeout.
var gitBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type gitMetrics struct {
	fetch, push *prometheus.HistogramVec
	errors      *prometheus.CounterVec
}

func newGitMetrics(reg prometheus.Registerer) gitMetrics {
	g := gitMetrics{
		fetch: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_git_fetch_duration_seconds",
			Help: "Duration of git reads from a repository: operation ls-remote (a poll) or fetch.", Buckets: gitBuckets},
			[]string{"repository", "operation"}),
		push: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_git_push_duration_seconds",
			Help: "Duration of git pushes to a repository (promotion commits).", Buckets: gitBuckets},
			[]string{"repository"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_git_errors_total",
			Help: "Failed git operations by kind: auth, host_key, unreachable, branch_missing, signature, timeout, lease_lost, too_large, other."},
			[]string{"repository", "operation", "kind"}),
	}
	reg.MustRegister(g.fetch, g.push, g.errors)
	return g
}

// ObserveGitOperation records one git operation on a repository (its URL
// without credentials). It implements source.Metrics.
func (m *Metrics) ObserveGitOperation(repository, operation string, d time.Duration, errorKind string) {
	op := bounded(operation, gitOperations)
	m.mu.Lock()
	if k := [2]string{repository, op}; !m.gitSeen[k] {
		m.gitSeen[k] = true
		for kind := range gitErrorKinds {
			m.git.errors.WithLabelValues(repository, op, kind)
		}
		m.git.errors.WithLabelValues(repository, op, otherValue)
		switch op {
		case "ls-remote", "fetch":
			m.git.fetch.WithLabelValues(repository, op)
		case "push":
			m.git.push.WithLabelValues(repository)
		}
	}
	m.mu.Unlock()
	switch op {
	case "ls-remote", "fetch":
		m.git.fetch.WithLabelValues(repository, op).Observe(d.Seconds())
	case "push":
		m.git.push.WithLabelValues(repository).Observe(d.Seconds())
	}
	if errorKind != "" {
		m.git.errors.WithLabelValues(repository, op, bounded(errorKind, gitErrorKinds)).Inc()
	}
}
