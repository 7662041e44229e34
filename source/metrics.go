package source

import "time"

// Metrics receives measurements of git operations. It is declared here, where
// it is used, so that this package does not depend on Prometheus; the
// metrics package implements it.
type Metrics interface {
	// ObserveGitOperation records one operation on a repository (URL
	// without credentials): "ls-remote", "fetch", "push", or "verify" (a
	// signature check); how long it took and its error kind (KindName; ""
	// for success). Per-branch outcomes such as a missing branch are in
	// PollResult.
	ObserveGitOperation(repository, operation string, d time.Duration, errorKind string)
}

type noMetrics struct{}

func (noMetrics) ObserveGitOperation(string, string, time.Duration, string) {}
