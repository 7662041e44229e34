// Package health computes the readiness of applied objects and names the
// cause when a rollout fails.
//
// It has three layers:
//
//   - Compute: the status of one object (Current, InProgress, Failed,
//     Terminating, Unknown) with a message, from the object alone. Pure: no
//     client, no clock. Generic checks (deletion, observedGeneration) come
//     first, then a function per kind, then the standard conditions.
//   - Diagnose and Finder: for a workload that is not ready, the pods of
//     its current rollout and the Warning events about them name a Cause
//     from a closed set (crashloop, oomkilled, imagepull, evicted, ...; see
//     Causes) and the pod and container at fault, in one bounded line. The
//     pods' status comes first; events fill in what it does not say (the
//     scheduler's message, a registry's error, a probe's output, a refused
//     pod's policy). Diagnose is pure and takes its evidence as plain data
//     (Evidence: pods and events), so any cache can feed it; the Finder
//     gathers it through a ClusterReader.
//   - Checker: Wait follows applied objects through watches until they are
//     ready, fail for certain, time out or are cancelled; Monitor keeps
//     following them afterwards and reports changes; Check evaluates once.
//     Each returns a Report: the overall verdict (Healthy, Progressing,
//     Degraded, Cancelled, Unknown), each object's status, cause and ready
//     time.
//
// What following costs: each watch event marks only the objects it
// concerns (an object; a pod, its ReplicaSet and their Deployment through
// controller references), and a round evaluates only those; while events
// keep coming, rounds are spaced so that evaluating takes at most a tenth
// of the time, and an object marked many times in between is evaluated
// once. The caches hold only the fields status and diagnosis read (see
// trim.go), pods and ReplicaSets are indexed by controller, and an idle
// healthy set evaluates nothing between changes. BenchmarkRollout500 and
// BenchmarkMonitorIdle1500 measure it.
//
// What is guaranteed: Wait returns promptly when its context ends; the
// informers a call starts are stopped before it returns; reports list
// objects in the order given; messages and causes come from what the
// cluster reports, never from guesses about time (except the OOM-kill
// window, judged with the injected clock).
//
// What is not: a Report reflects the watch caches, which lag the apiserver
// by the watch latency and keep their last state while the apiserver is
// unreachable. Events expire (an hour by default), so a cause read only
// from events (an Unhealthy probe message, a FailedCreate) may be missing
// for an old failure; conditions kept in status (ReplicaFailure) are used
// where they exist.
package health
