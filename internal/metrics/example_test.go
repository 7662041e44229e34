package metrics_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/metrics"
)

// The agent's wiring: one Metrics is the agent's Recorder (usually behind
// the events recorder, events.Options.Next), the git layer's Metrics, and
// the /metrics handler.
func Example() {
	m, reg := metrics.New(metrics.Options{})
	_ = agent.Options{Recorder: m, SourceMetrics: m, Metrics: m.Handler()}

	m.SyncDone(agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: "1a2b3c", Result: agent.SyncSucceeded,
		Duration: 2 * time.Second, Interval: time.Minute})
	m.SyncDone(agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: "4d5e6f", Result: agent.SyncSucceeded,
		Duration: 2 * time.Second, Interval: time.Minute})
	n, _ := testutil.GatherAndCount(reg, "baton_synced_revision_info")
	fmt.Println("revision series:", n)
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "baton_deployments_total" {
			// The first revision is the state found at start; the second
			// is a deployment.
			fmt.Println("deployments:", mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	// Output:
	// revision series: 1
	// deployments: 1
}
