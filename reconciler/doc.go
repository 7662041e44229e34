// Package reconciler makes the live cluster match the rendered objects of one
// environment: diff, server-side apply, prune, drift, inventory.
package reconciler
