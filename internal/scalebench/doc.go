// Package scalebench holds the scale benchmarks of issue 18, run by `make
// bench`: many small environments (Flux's benchmark shape) and one large
// environment, with the agent run as a child process (cmd/baton) whose
// resident memory and CPU time are read from /proc. docs/benchmarks.md
// records the figures and how to read them.
//
// The package has no code of its own: its benchmarks start a local
// control plane (internal/testenv) only when benchmarks are asked for.
package scalebench
