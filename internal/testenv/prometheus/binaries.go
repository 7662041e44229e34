// Package prometheus runs a real Prometheus server for tests, and its
// promtool. Both are built once per machine from the Go module proxy into
// the test environment's cache (see package toolcache), with the
// remove_all_sd build tag: the tests need only file-based discovery, which
// the tag keeps, and the build is minutes shorter without the cloud
// providers.
//
// A Server listens on a free loopback port, scrapes the targets a test
// gives it every second (ScrapeInterval), evaluates rule files, and answers
// instant queries. Tests wait on conditions (Server.WaitUp,
// Server.WaitQuery), never on fixed sleeps.
package prometheus

import (
	"context"
	"io"
	"path/filepath"

	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

// Version is the Prometheus release the tests run.
const Version = "v0.316.0"

const module = "github.com/prometheus/prometheus"

// EnsureBinaries builds prometheus and promtool into the cache once,
// printing a progress line per program to progress (2 to 5 minutes cold on
// two cores). `make testenv` calls it so the build shows before the tests.
func EnsureBinaries(ctx context.Context, progress io.Writer) error {
	_, err := binDir(ctx, progress)
	return err
}

// PromtoolPath returns the path of the cached promtool, building it first
// if needed.
func PromtoolPath(ctx context.Context, progress io.Writer) (string, error) {
	dir, err := binDir(ctx, progress)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "promtool"), nil
}

func binDir(ctx context.Context, progress io.Writer) (string, error) {
	program := func(name string) toolcache.Program {
		return toolcache.Program{Name: name, Build: func(ctx context.Context, dir string) error {
			return toolcache.GoInstall(ctx, dir, "-tags", "remove_all_sd", "-ldflags", "-s -w", module+"/cmd/"+name+"@"+Version)
		}}
	}
	return toolcache.Ensure(ctx, toolcache.Tool{
		Name: "prometheus", Version: Version,
		Programs: []toolcache.Program{program("prometheus"), program("promtool")},
	}, progress)
}

// OperatorCRD returns the path of a prometheus-operator CRD manifest as the
// operator's own Go module ships it (e.g. "servicemonitors",
// "prometheusrules"), downloading the module on first use through the
// nested build module internal/testenv/build/promop, which pins the
// version (v0.85.0: the module proxy serves later releases only as the
// pkg/apis/monitoring sub-module, which holds no YAML; ServiceMonitor and
// PrometheusRule are stable v1 APIs).
func OperatorCRD(ctx context.Context, plural string) (string, error) {
	dir, err := toolcache.ModuleDir(ctx, "promop", "github.com/prometheus-operator/prometheus-operator")
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_"+plural+".yaml"), nil
}
