package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/baton-gitops/baton/internal/agent"
)

// Buckets for lead times: from a minute (dev, seconds after a push) to a
// week (a release waiting for a prod window).
var leadTimeBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800, 604800}

type promotionMetrics struct {
	total                 *prometheus.CounterVec
	pending, frozen, held *prometheus.GaugeVec
	leadTime              *prometheus.HistogramVec
}

func newPromotionMetrics(reg prometheus.Registerer) promotionMetrics {
	edge := []string{"pipeline", "from", "to"}
	p := promotionMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "baton_promotions_total",
			Help: "Promotion outcomes along a pipeline edge, counted when the outcome or the revision changes: pushed, pull-request, up-to-date, blocked, held, frozen, failure; and reverted, once per promotion reverted because it left the target unhealthy."},
			[]string{"pipeline", "from", "to", "result"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_promotion_pending",
			Help: "1 while a revision waits to be promoted: a gate has not passed, a pull request is open, or the last attempt failed."}, edge),
		frozen: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_promotion_frozen",
			Help: "1 while promotions are frozen because the source environment is unhealthy or suspended."}, edge),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "baton_promotion_held",
			Help: "1 while the source revision is held back: its content was reverted on the target before."}, edge),
		leadTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "baton_promotion_lead_time_seconds",
			Help: "Time from the promoted source commit to the target environment synced and healthy.", Buckets: leadTimeBuckets}, edge),
	}
	reg.MustRegister(p.total, p.pending, p.frozen, p.held, p.leadTime)
	return p
}

type edgeKey struct{ pipeline, from, to string }

// edgeState is what the recorder remembers about one pipeline edge.
type edgeState struct {
	// revision and outcome of the last evaluation: a repeat is not counted.
	revision, outcome string
	// landing is a promotion on its way to the target, nil when none.
	landing *landing
}

// landing is a promotion whose lead time is observed once the target is
// healthy on a revision other than the one it had when it was promoted.
type landing struct {
	sourceRevision   string
	sourceCommitTime time.Time
	targetRevision   string
}

// PromotionDone records one evaluation of a pipeline edge. Only changes of
// outcome or revision are counted: the agent evaluates after every pass.
func (m *Metrics) PromotionDone(r agent.PromotionRecord) {
	k := edgeKey{r.Pipeline, r.From, r.To}
	outcome := bounded(r.Outcome, promotionOutcomes)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.edges[k]
	if !ok {
		e = &edgeState{}
		m.edges[k] = e
		for o := range promotionOutcomes {
			m.promotion.total.WithLabelValues(r.Pipeline, r.From, r.To, o) // at zero, see initEnv
		}
		m.promotion.leadTime.WithLabelValues(r.Pipeline, r.From, r.To)
	}
	if outcome == "reverted" {
		// Reported by the target's agent, once per revert: a count only.
		// The edge's gauges and memory are the source's evaluations'.
		m.promotion.total.WithLabelValues(r.Pipeline, r.From, r.To, outcome).Inc()
		return
	}
	if e.revision != r.Revision || e.outcome != outcome {
		m.promotion.total.WithLabelValues(r.Pipeline, r.From, r.To, outcome).Inc()
		e.revision, e.outcome = r.Revision, outcome
	}
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m.promotion.pending.WithLabelValues(r.Pipeline, r.From, r.To).Set(flag(outcome == "blocked" || outcome == "pull-request" || outcome == "failure"))
	m.promotion.frozen.WithLabelValues(r.Pipeline, r.From, r.To).Set(flag(outcome == "frozen"))
	m.promotion.held.WithLabelValues(r.Pipeline, r.From, r.To).Set(flag(outcome == "held"))

	if outcome != "pushed" && outcome != "pull-request" {
		return
	}
	if e.landing != nil && e.landing.sourceRevision == r.Revision {
		return // the same promotion, still on its way
	}
	src := m.envs[r.From]
	if src == nil || src.revision != r.Revision || src.commitTime.IsZero() {
		return // the source commit's time is unknown here
	}
	l := &landing{sourceRevision: r.Revision, sourceCommitTime: src.commitTime}
	if dst := m.envs[r.To]; dst != nil {
		l.targetRevision = dst.revision
	}
	e.landing = l
}

// landedLocked observes the lead time of the promotions into env once it
// is healthy on a new revision.
func (m *Metrics) landedLocked(env, revision string, now time.Time) {
	for k, e := range m.edges {
		if k.to != env || e.landing == nil || e.landing.targetRevision == revision {
			continue
		}
		m.promotion.leadTime.WithLabelValues(k.pipeline, k.from, k.to).Observe(now.Sub(e.landing.sourceCommitTime).Seconds())
		e.landing = nil
	}
}

// forget deletes the gauges of an edge (see LeaderChanged).
func (p promotionMetrics) forget(k edgeKey) {
	p.pending.DeleteLabelValues(k.pipeline, k.from, k.to)
	p.frozen.DeleteLabelValues(k.pipeline, k.from, k.to)
	p.held.DeleteLabelValues(k.pipeline, k.from, k.to)
}
