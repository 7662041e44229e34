package e2e

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/demo"
)

// keepNodesAlive renews the nodes' Leases until the test ends (see
// demo.KeepNodesAlive for why).
func keepNodesAlive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done, err := demo.KeepNodesAlive(ctx, env.Clientset(t), func(err error) { t.Log(err) })
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); <-done })
}
