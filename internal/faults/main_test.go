package faults

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/batonbin"
)

// env is the package's control plane; Gitea is started by the test.
var env *testenv.Cluster

// baton builds cmd/baton once: the agents run as separate processes, so
// that they can be killed with SIGKILL.
var baton batonbin.Builder

func TestMain(m *testing.M) {
	code := testenv.Main(m, &env)
	baton.Remove()
	os.Exit(code)
}
