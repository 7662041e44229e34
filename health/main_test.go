package health

import (
	"flag"
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane: the table tests read fixtures and do
// not use it; the cluster tests and the fixture capture do.
var env *testenv.Cluster

func TestMain(m *testing.M) {
	// testenv.Main asks testing.Verbose, which panics before the flags are
	// parsed; m.Run parses them again harmlessly.
	flag.Parse()
	os.Exit(testenv.Main(m, &env))
}
