package metrics

import "github.com/prometheus/client_golang/prometheus"

// doraMetrics are the four DORA keys per environment: deployment frequency
// (rate of deployments), lead time for changes, change failure rate
// (change failures over deployments) and time to restore.
type doraMetrics struct {
	deployments, changeFailures *prometheus.CounterVec
	leadTime, timeToRestore     *prometheus.HistogramVec
}

func newDORAMetrics(reg prometheus.Registerer) doraMetrics {
	env := []string{"environment"}
	d := doraMetrics{
		deployments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_deployments_total",
			Help: "Deployments: successful syncs of a revision other than the one in the cluster before."}, env),
		changeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_change_failures_total",
			Help: "Change failures: deployed revisions that became degraded, and deployed reverts."}, env),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_change_lead_time_seconds",
			Help:    "Lead time for changes: commit time of a deployed revision to its first healthy verdict in the environment.",
			Buckets: leadTimeBuckets}, env),
		timeToRestore: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_time_to_restore_seconds",
			Help: "Time to restore: from degraded to healthy again.", Buckets: leadTimeBuckets}, env),
	}
	reg.MustRegister(d.deployments, d.changeFailures, d.leadTime, d.timeToRestore)
	return d
}
