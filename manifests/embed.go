// Package manifests holds Baton's install (kustomize: `kubectl apply -k
// manifests/`). Go code reads only the Environment CRD from it, so that the
// tests install the very file users install.
package manifests

import _ "embed"

// EnvironmentCRD is environment-crd.yaml: the Environment custom resource
// definition.
//
//go:embed environment-crd.yaml
var EnvironmentCRD []byte
