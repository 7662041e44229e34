package metrics

import (
	"strings"

	"github.com/baton-gitops/baton/health"
)

// Label values outside their closed set are recorded as this, so that a new
// value in another package can never make the series unbounded.
const otherValue = "other"

// The closed sets of label values. Each mirrors constants declared by the
// package that produces them (agent, reconciler, source; health lists its
// causes itself); the tests check the mirrors against those constants.
var (
	syncResults        = set("success", "failure", "suspended")
	syncStages         = set("source", "render", "apply")
	refusalRules       = set("namespace", "cluster-kind", "protected", "ownership", "file-size", "objects", "aliases", "memory", "time")
	applyActions       = set("created", "configured", "unchanged", "deleted", "recreated", "skipped", "drifted", "failed")
	driftModes         = set("correct", "detect-only")
	healthStatuses     = []string{"healthy", "progressing", "degraded", "unknown"}
	healthCauses       = causeSet()
	gitOperations      = set("ls-remote", "fetch", "push", "verify", "commit")
	gitErrorKinds      = set("auth", "host_key", "unreachable", "branch_missing", "signature", "timeout", "lease_lost", "too_large")
	promotionOutcomes  = set("pushed", "pull-request", "up-to-date", "blocked", "held", "frozen", "failure", "reverted")
	healthStatusLookup = set(healthStatuses...)
)

func set(values ...string) map[string]bool {
	m := make(map[string]bool, len(values))
	for _, v := range values {
		m[v] = true
	}
	return m
}

func causeSet() map[string]bool {
	m := map[string]bool{}
	for _, c := range health.Causes() {
		m[string(c)] = true
	}
	return m
}

// bounded returns v if it is in allowed, otherValue if not.
func bounded(v string, allowed map[string]bool) string {
	if allowed[v] {
		return v
	}
	return otherValue
}

// healthStatus maps health.Overall ("Healthy", ...) onto the status label.
// Cancelled (a wait interrupted by a newer revision) says nothing about the
// environment and counts as unknown.
func healthStatus(overall string) string {
	s := strings.ToLower(overall)
	if healthStatusLookup[s] {
		return s
	}
	return "unknown"
}

// healthCause maps a health.Cause onto the cause label; a degraded verdict
// without a cause found is "unknown".
func healthCause(cause string) string {
	if cause == "" {
		return "unknown"
	}
	return bounded(cause, healthCauses)
}

// driftMode maps the environment's drift setting; empty means the default,
// correct.
func driftMode(mode string) string {
	if mode == "" {
		return "correct"
	}
	return bounded(mode, driftModes)
}
