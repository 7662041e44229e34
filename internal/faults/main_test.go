package faults

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane; Gitea is started by the test. The
// agents run as separate processes (testenv.BatonBinary), so that they can
// be killed with SIGKILL.
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
