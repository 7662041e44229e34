// Package e2e holds the end-to-end test of the pipeline: the demo's story
// (internal/demo) on a real control plane, a real Gitea and three real
// agents, with every step asserted. It has no code outside its tests.
package e2e
