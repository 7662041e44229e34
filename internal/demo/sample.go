// Package demo is Baton's demonstration: a sample "shop" repository, the
// configuration of three agents (dev, staging, prod) following it, and the
// git steps of the story that `make demo` narrates and internal/e2e asserts.
package demo

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

// sample is the shop: base/ plus overlays/dev|staging|prod.
//
//go:embed sample
var sample embed.FS

// Environments are the sample's environments, in pipeline order.
var Environments = []string{"dev", "staging", "prod"}

// Branch is the branch an environment follows.
func Branch(env string) string { return "env/" + env }

// SampleFiles returns the sample repository's files by path (base/...,
// overlays/...).
func SampleFiles() (map[string]string, error) {
	files := map[string]string{}
	err := fs.WalkDir(sample, "sample", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := sample.ReadFile(p)
		if err != nil {
			return fmt.Errorf("sample %s: %w", p, err)
		}
		files[strings.TrimPrefix(p, "sample/")] = string(b)
		return nil
	})
	return files, err
}

// OOMPatchPath is the dev overlay's patch that makes the bad release's api
// pods OOMKilled.
const OOMPatchPath = "overlays/dev/oom-1.2.0.yaml"

// OOMPatch stands in for an image that runs out of memory: the local
// cluster runs no containers, so the kwok failure label on the pod template
// gives its pods the status of an OOMKilled container. It travels in the
// same commit as the bump to api:1.2.0 (see BadRelease), so one `git revert`
// undoes both, as it would undo a real bad image.
const OOMPatch = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    metadata:
      labels:
        testenv.baton.dev/failure: oomkilled
`
