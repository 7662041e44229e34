package scalebench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the benchmarks' control plane, with enough simulated nodes for a
// thousand pods; nil when no benchmark runs (go test ./... of make test).
var env *testenv.Cluster

// nodes simulated by kwok: 110 pods each.
const nodes = 12

func TestMain(m *testing.M) {
	flag.Parse()
	if b := flag.Lookup("test.bench"); b == nil || b.Value.String() == "" {
		os.Exit(m.Run()) // no benchmark asked for: no control plane
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	c, err := testenv.Start(ctx, testenv.Options{Nodes: nodes})
	cancel()
	if err != nil {
		fmt.Printf("testenv: start control plane: %v\n", err)
		os.Exit(1)
	}
	env = c
	code := m.Run()
	if code != 0 {
		c.KeepLogs()
		fmt.Printf("testenv: control plane logs kept in %s\n", c.LogDir())
	}
	c.Stop()
	testenv.RemoveBatonBinary()
	os.Exit(code)
}
