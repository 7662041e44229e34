// Package render turns one environment's overlay at one revision into the
// Kubernetes objects to apply, with Kustomize in process.
package render
