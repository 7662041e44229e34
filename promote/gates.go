package promote

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/baton-gitops/baton/source"
)

// SourceState is what the agent knows about the source environment of an
// edge, as plain data: the wiring converts the reconciler's and health
// checker's results into it, so this package depends on neither.
type SourceState struct {
	// Revision is the revision the environment is synced at; nil means it
	// has not synced yet. Its Snapshot is read for the promoted content.
	Revision *source.Revision
	// SyncedAt is when that revision was applied. The soak counts from the
	// later of SyncedAt and HealthySince; zero means HealthySince alone.
	SyncedAt time.Time
	// Healthy reports whether the environment is healthy now.
	Healthy bool
	// HealthySince is when it last became healthy (zero when unhealthy).
	HealthySince time.Time
	// Reason says why it is unhealthy (the root cause the health checker
	// found); it goes into the freeze comment.
	Reason string
	// Frozen is an operator's freeze of promotions out of the environment;
	// FrozenReason says why.
	Frozen       bool
	FrozenReason string
	// Override, when set, skips the soak and query gates: a person's
	// explicit decision, recorded in the promotion commit's
	// Baton-Gates-Overridden trailer. The source must still be synced, and
	// a freeze (an unhealthy or frozen source) or a hold (a reverted
	// promotion) still blocks. Nil means every gate applies.
	Override *Override
}

// Override is who skipped an edge's gates and why.
type Override struct {
	// By names the person, e.g. "Ada <ada@example.com>". Required.
	By string
	// Reason says why the gates were skipped. Required.
	Reason string
}

func (o *Override) validate() error {
	switch {
	case strings.TrimSpace(o.By) == "":
		return errors.New("gate override: who overrides (By) is required")
	case strings.TrimSpace(o.Reason) == "":
		return errors.New("gate override: a reason is required")
	}
	return nil
}

// Comparison compares a query's value with a threshold.
type Comparison string

// The comparisons a query gate can make: value Op threshold.
const (
	Less           Comparison = "<"
	LessOrEqual    Comparison = "<="
	Greater        Comparison = ">"
	GreaterOrEqual Comparison = ">="
	Equal          Comparison = "=="
	NotEqual       Comparison = "!="
)

func (c Comparison) valid() bool {
	switch c {
	case Less, LessOrEqual, Greater, GreaterOrEqual, Equal, NotEqual:
		return true
	}
	return false
}

func (c Comparison) holds(v, threshold float64) bool {
	switch c {
	case Less:
		return v < threshold
	case LessOrEqual:
		return v <= threshold
	case Greater:
		return v > threshold
	case GreaterOrEqual:
		return v >= threshold
	case Equal:
		return v == threshold
	case NotEqual:
		return v != threshold
	}
	return false
}

// QueryGate is a PromQL expression whose value must compare true with a
// threshold, e.g. an error ratio over 5 minutes below 0.01.
type QueryGate struct {
	// Name names the gate in results and trailers, e.g. "error-ratio".
	Name string
	// Query is the PromQL expression; it must give a scalar or a vector of
	// exactly one sample.
	Query string
	// Op compares the value with Threshold: value Op Threshold must hold.
	Op        Comparison
	Threshold float64
}

func (q QueryGate) validate() error {
	switch {
	case q.Name == "" || strings.ContainsAny(q.Name, " \t\n;"):
		return fmt.Errorf("name %q: want a short name without spaces or ';'", q.Name)
	case strings.TrimSpace(q.Query) == "":
		return fmt.Errorf("%s: query is required", q.Name)
	case !q.Op.valid():
		return fmt.Errorf("%s: op %q: want one of < <= > >= == !=", q.Name, q.Op)
	case math.IsNaN(q.Threshold) || math.IsInf(q.Threshold, 0):
		return fmt.Errorf("%s: threshold must be a finite number", q.Name)
	}
	return nil
}

// Querier evaluates a PromQL expression at a time and returns its single
// value; promote/promql's Client is one. An error (no data, more than one
// series, a failed request) fails the gate.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) (float64, error)
}

// Gate names used in GateResult.Gate besides the query gates' own names.
const (
	GateSynced = "synced"
	GateSoak   = "soak"
	GateFrozen = "frozen"
	GateBranch = "promotion-branch"
	GateClosed = "pull-request-closed"
	// GateSignature: the target branch's head fails the branch's
	// signature policy; promotions wait for a head that passes.
	GateSignature = "target-signature"
	// GateOverridden stands for the soak and query gates a person skipped
	// (SourceState.Override).
	GateOverridden = "overridden"
)

// GateResult is the verdict of one gate.
type GateResult struct {
	// Gate is GateSynced, GateSoak, or a query gate's name.
	Gate   string
	Passed bool
	// Detail says what was measured, or why the gate failed.
	Detail string
}

func (g GateResult) String() string {
	verdict := "passed"
	if !g.Passed {
		verdict = "failed"
	}
	return g.Gate + " " + verdict + ": " + g.Detail
}

// checkGates evaluates an edge's gates against the source state at now.
// Query gates are asked only once the cheap gates pass. retry is how long
// until the soak is over, when that is what blocks.
func checkGates(ctx context.Context, e Edge, st SourceState, now time.Time, q Querier) (results []GateResult, passed bool, retry time.Duration) {
	if st.Revision == nil {
		return []GateResult{{Gate: GateSynced, Detail: e.From + " has not synced a revision yet"}}, false, 0
	}
	results = append(results, GateResult{Gate: GateSynced, Passed: true, Detail: e.From + " synced at " + short(st.Revision.Commit)})
	if o := st.Override; o != nil {
		return append(results, GateResult{Gate: GateOverridden, Passed: true,
			Detail: fmt.Sprintf("soak and query gates skipped by %s: %s", oneLine(o.By), oneLine(o.Reason))}), true, 0
	}
	start := st.HealthySince
	if st.SyncedAt.After(start) {
		start = st.SyncedAt
	}
	healthyFor := now.Sub(start)
	soak := GateResult{Gate: GateSoak}
	switch {
	case start.IsZero():
		soak.Detail = "no healthy-since time"
	case healthyFor < e.Soak:
		soak.Detail = fmt.Sprintf("healthy for %s of %s", healthyFor.Round(time.Second), e.Soak)
		retry = e.Soak - healthyFor
	default:
		soak.Passed = true
		soak.Detail = fmt.Sprintf("healthy for %s (soak %s)", healthyFor.Round(time.Second), e.Soak)
	}
	results = append(results, soak)
	if !soak.Passed {
		return results, false, retry
	}
	passed = true
	for _, g := range e.Queries {
		r := GateResult{Gate: g.Name}
		v, err := q.Query(ctx, g.Query, now)
		switch {
		case err != nil:
			r.Detail = fmt.Sprintf("query %q: %v", g.Query, err)
		case math.IsNaN(v):
			r.Detail = fmt.Sprintf("query %q gave NaN", g.Query)
		default:
			r.Passed = g.Op.holds(v, g.Threshold)
			r.Detail = fmt.Sprintf("%s %s %s", formatFloat(v), g.Op, formatFloat(g.Threshold))
			if !r.Passed {
				r.Detail = fmt.Sprintf("%s is not %s %s", formatFloat(v), g.Op, formatFloat(g.Threshold))
			}
		}
		passed = passed && r.Passed
		results = append(results, r)
	}
	return results, passed, 0
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// short abbreviates a commit hash as git does by default.
func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}
