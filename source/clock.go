package source

import (
	"time"
)

// Clock tells the time and waits. Tests pass a clock they control; nil
// options mean the system clock.
type Clock interface {
	Now() time.Time
	// After sends the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Metrics receives measurements of git operations. It is declared here, where
// it is used, so that this package does not depend on Prometheus; the
// metrics package implements it.
type Metrics interface {
	// ObserveGitOperation records one operation ("ls-remote", "fetch",
	// "push") on a repository (URL without credentials): how long it took
	// and its error kind (KindName; "" for success).
	ObserveGitOperation(repository, operation string, d time.Duration, errorKind string)
}

type noMetrics struct{}

func (noMetrics) ObserveGitOperation(string, string, time.Duration, string) {}
