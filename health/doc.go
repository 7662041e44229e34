// Package health computes the readiness of applied objects and names the
// cause when a rollout fails.
package health
