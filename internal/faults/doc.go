// Package faults holds the fault-injection suite: the pipeline (two agent
// replicas, as separate processes, syncing dev, staging and prod and
// promoting between them on a real control plane and a real Gitea) runs
// releases while faults are injected — SIGKILL at chosen points, the API
// server stopped mid-apply, git and forge failures through a fault proxy,
// leadership moved A→B→A, webhook storms — and invariants are checked after
// each. It has no code outside its tests.
//
// `make test` runs a bounded slice (one iteration per fault kind);
// `make soak` runs BATON_FAULT_ITERATIONS (200) iterations. Every run prints
// its seed; BATON_FAULT_SEED=<seed> replays it.
package faults
