package reconciler

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The API server dies in the middle of an apply; once it is back, the next
// pass converges. Not parallel: it stops the package's API server.
func TestSyncConvergesAfterAPIServerRestartMidApply(t *testing.T) {
	ns := env.Namespace(t)
	name := envName(t)
	const total, stopAfter = 300, 40

	// The transport holds the 41st apply until the API server is down, so
	// the outage falls in the middle of the apply on any machine.
	var (
		mu      sync.Mutex
		applies int
		armed   atomic.Bool
		halfway = make(chan struct{})
		down    = make(chan struct{})
	)
	armed.Store(true)
	counter := requestCounter{onRequest: func(r *http.Request) {
		if r.Method != http.MethodPatch || !armed.Load() {
			return
		}
		mu.Lock()
		applies++
		n := applies
		mu.Unlock()
		if n == stopAfter+1 {
			close(halfway)
		}
		if n > stopAfter {
			<-down
		}
	}}
	r := newReconciler(t, counter.wrap(env.Config()), ns, Options{Concurrency: 4, CacheSyncTimeout: 2 * time.Second})
	req := Request{Environment: name, Revision: "r1", DefaultNamespace: ns, Prune: true, Objects: configMaps("", total, "x")}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := r.Sync(ctx, req)
		done <- err
	}()
	select {
	case <-halfway:
	case err := <-done:
		t.Fatalf("sync ended before the outage: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("apply never reached the halfway mark")
	}
	env.StopAPIServer(t)
	close(down)
	select {
	case err := <-done:
		require.Error(t, err, "a pass during an outage fails")
	case <-time.After(2 * time.Minute):
		t.Fatal("sync did not return during the outage")
	}
	armed.Store(false)

	env.StartAPIServer(t)
	inv, err := r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Empty(t, inv.Entries, "no completed pass")
	assert.Len(t, inv.Pending, total, "every object the failed pass may have created is recorded")
	res, err := r.Sync(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, total, res.Counts[ActionCreated]+res.Counts[ActionUnchanged]+res.Counts[ActionConfigured])
	assert.Positive(t, res.Counts[ActionUnchanged]+res.Counts[ActionConfigured], "objects applied before the outage are found")
	list, err := env.Clientset(t).CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{LabelSelector: LabelEnvironment + "=" + name})
	require.NoError(t, err)
	assert.Len(t, list.Items, total)
	inv, err = r.Inventory(t.Context(), name)
	require.NoError(t, err)
	assert.Len(t, inv.Entries, total)
	assert.Empty(t, inv.Pending)
}
