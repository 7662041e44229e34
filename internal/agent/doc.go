// Package agent is Baton's in-cluster agent: it wires source, render,
// reconciler, health and promote together and runs one loop per synced
// environment, behind a leader election, with an HTTP server for probes,
// metrics, webhooks and status.
package agent
