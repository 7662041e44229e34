package e2e

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane; the forge is started by the test.
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

// batonBinary is cmd/baton, built once for the package: set-image runs as
// CI runs it.
func batonBinary(t *testing.T) string { return testenv.BatonBinary(t) }
