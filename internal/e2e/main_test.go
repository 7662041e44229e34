package e2e

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/batonbin"
)

// env is the package's control plane; the forge is started by the test.
var env *testenv.Cluster

// baton builds cmd/baton once for the package: set-image runs as CI runs it.
var baton batonbin.Builder

func TestMain(m *testing.M) {
	code := testenv.Main(m, &env)
	baton.Remove()
	os.Exit(code)
}

func batonBinary(t *testing.T) string { return baton.Path(t) }
