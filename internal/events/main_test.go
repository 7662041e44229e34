package events_test

import (
	"os"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }
