// Package promote carries a release from one environment's branch to the
// next: gates, promotion commits, pull requests, holds and freezes.
package promote
