package discoverymapper_test

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane.
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
