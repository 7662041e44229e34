package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/source"
)

// Both interfaces are the consumers'; these lines keep them satisfied.
var (
	_ agent.Recorder = (*Metrics)(nil)
	_ source.Metrics = (*Metrics)(nil)
)

// Options tune New. The zero value is what the agent wants.
type Options struct {
	// Now tells the time for the DORA and promotion durations and the
	// last-sync timestamp. Nil means time.Now.
	Now func() time.Time
	// NoProcessCollectors leaves out the Go runtime and process collectors
	// (for tests that compare whole registries). False registers them.
	NoProcessCollectors bool
}

// Metrics records the agent's and the git layer's measurements into one
// registry. It implements agent.Recorder and source.Metrics; its methods
// are safe for concurrent use and never block on I/O.
type Metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	// mu guards envs and edges, the memory needed to tell a new revision,
	// a first healthy verdict or a recovery from a repeat.
	mu      sync.Mutex
	envs    map[string]*envState
	edges   map[edgeKey]*edgeState
	gitSeen map[[2]string]bool // repository and operation with counters created

	sync      syncMetrics
	git       gitMetrics
	health    healthMetrics
	promotion promotionMetrics
	dora      doraMetrics
	leader    prometheus.Gauge
}

// New returns the recorders and the registry they write to. The registry
// holds only Baton's metrics and, unless opts say otherwise, the Go runtime
// and process collectors: nothing is registered globally.
func New(opts Options) (*Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, now: opts.Now, envs: map[string]*envState{}, edges: map[edgeKey]*edgeState{},
		gitSeen: map[[2]string]bool{}}
	if m.now == nil {
		m.now = time.Now
	}
	m.sync = newSyncMetrics(reg)
	m.git = newGitMetrics(reg)
	m.health = newHealthMetrics(reg)
	m.promotion = newPromotionMetrics(reg)
	m.dora = newDORAMetrics(reg)
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "baton_leader",
		Help: "1 while this replica leads (applies and promotes), 0 while it stands by."})
	reg.MustRegister(m.leader)
	if !opts.NoProcessCollectors {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return m, reg
}

// Handler serves the registry in the Prometheus exposition formats, for
// the agent's /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// LeaderChanged records whether this replica leads. Losing the lead drops
// every per-environment and per-edge gauge (see the package doc) and the
// memory behind the DORA counts: the next leadership starts afresh.
func (m *Metrics) LeaderChanged(leading bool) {
	if leading {
		m.leader.Set(1)
		return
	}
	m.leader.Set(0)
	m.mu.Lock()
	defer m.mu.Unlock()
	for env := range m.envs {
		m.sync.forget(env)
		m.health.forget(env)
	}
	for k := range m.edges {
		m.promotion.forget(k)
	}
	m.envs = map[string]*envState{}
	m.edges = map[edgeKey]*edgeState{}
}

// EnvironmentReleased drops env's gauges and those of the edges out of
// it, as LeaderChanged(false) does for all: another replica syncs env now
// and reports it (counters and histograms stay; sums across replicas
// remain right).
func (m *Metrics) EnvironmentReleased(env string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sync.forget(env)
	m.health.forget(env)
	delete(m.envs, env)
	for k := range m.edges {
		if k.from == env {
			m.promotion.forget(k)
			delete(m.edges, k)
		}
	}
}

// env returns the state of an environment, creating it. Callers hold mu.
func (m *Metrics) envLocked(name string) *envState {
	st, ok := m.envs[name]
	if !ok {
		st = &envState{}
		m.envs[name] = st
		m.initEnv(name)
	}
	return st
}

// initEnv creates an environment's counters at zero for every label value
// of their closed sets. Prometheus's increase() and rate() need a sample
// before the first increment: a series born at 1 hides that increment, and
// the first failure of a kind would never show.
func (m *Metrics) initEnv(env string) {
	for r := range syncResults {
		m.sync.total.WithLabelValues(env, r)
	}
	for s := range syncStages {
		m.sync.failures.WithLabelValues(env, s)
	}
	for a := range applyActions {
		m.sync.applyObjects.WithLabelValues(env, a)
	}
	for c := range healthCauses {
		m.health.failures.WithLabelValues(env, c)
	}
	m.health.failures.WithLabelValues(env, "unknown")
	// Histograms too: increase() over a bucket born with its first
	// observation hides that observation, and a lead time observed once a
	// day would never show.
	m.sync.duration.WithLabelValues(env)
	m.sync.applyDuration.WithLabelValues(env)
	m.sync.renderTime.WithLabelValues(env)
	m.health.wait.WithLabelValues(env)
	m.dora.leadTime.WithLabelValues(env)
	m.dora.timeToRestore.WithLabelValues(env)
	m.sync.pruned.WithLabelValues(env)
	m.sync.renderErrors.WithLabelValues(env)
	m.dora.deployments.WithLabelValues(env)
	m.dora.changeFailures.WithLabelValues(env)
}

// envState is what the recorder remembers about one environment.
type envState struct {
	// The revision in the cluster (last successful sync) and its facts.
	branch, revision string
	commitTime       time.Time
	driftMode        string
	// pipeline is the one baton_environment_info names; infoSet says the
	// series exists.
	pipeline string
	infoSet  bool
	// deployed is the last revision counted as a deployment; leadPending
	// says its lead time is not observed yet (it has not been healthy).
	deployed    string
	leadPending bool
	// failedRevision is the last revision counted as a change failure, so
	// that a revision that degrades twice counts once.
	failedRevision string
	// status is the current health status label; degradedSince is when it
	// last became degraded (zero while not degraded or restored).
	status        string
	degradedSince time.Time
	// cause and causeRevision are the last failure counted by cause.
	cause, causeRevision string
}
