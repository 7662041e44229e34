package agent

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane: the loop and election tests run
// against it, with a real git server per test.
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
