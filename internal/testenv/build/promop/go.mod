// Holds the prometheus-operator module, whose CRD YAML the manifests tests
// apply (ServiceMonitor, PrometheusRule). A module of its own so that the
// operator's dependencies stay out of the main module's graph; nothing is
// built from it.
module github.com/baton-gitops/baton/internal/testenv/build/promop

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
