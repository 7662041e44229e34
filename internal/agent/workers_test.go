package agent

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// With one worker, a webhook's sync goes before the routine syncs already
// waiting: five environments wait for their first sync behind one whose
// apply the admission gate holds; a push webhook for the one last in line
// makes it the next to apply.
func TestWebhookWorkGoesFirst(t *testing.T) {
	m := newMultiFixture(t, 5)
	var namespaces []string
	for _, e := range m.envs {
		namespaces = append(namespaces, m.ns[e])
	}
	g := newGate(t, namespaces)
	cfg := m.config(m.configYAML(time.Hour, "workers: 1\nleaderElection: {enabled: false}"))
	a := m.startAgent(cfg, "replica-a", nil)

	first := g.next(60 * time.Second) // the first apply, held
	pool := a.agent.parts.syncs
	eventually(t, 30*time.Second, "the other four environments to wait for the worker", func() bool {
		return len(pool.Waiting()) == 4
	})
	waiting := pool.Waiting()
	last := waiting[len(waiting)-1]
	t.Logf("held: %s; waiting in turn order: %v", first, waiting)

	v2 := m.repo.Commit(t, m.branch(last), gitserver.Change{Write: overlay(1, "v2")})
	m.postPush(a.addr, m.branch(last))
	eventually(t, 30*time.Second, "the pushed environment to be first in line", func() bool {
		w := pool.Waiting()
		return len(w) == 4 && w[0] == last
	})
	g.setOpen()
	require.Equal(t, m.ns[last], g.next(60*time.Second), "the next apply after the held one is not the webhook's environment")
	eventually(t, 60*time.Second, "the pushed environment to sync v2", func() bool { return a.rec.synced(v2) })
	for _, e := range m.envs {
		eventually(t, 60*time.Second, e+" to be applied", func() bool { return configMapValue(t, m.ns[e], "cm-000") != "" })
	}
}

// One slow environment holds one worker, never more: while the gate
// holds its apply, the other environments sync new commits on the other
// worker.
func TestSlowEnvironmentTakesOnlyItsShare(t *testing.T) {
	m := newMultiFixture(t, 4)
	slow, fast := m.envs[0], m.envs[1:]
	g := newGate(t, []string{m.ns[slow]})
	g.hold(m.ns[slow])
	cfg := m.config(m.configYAML(time.Hour, "workers: 2\nleaderElection: {enabled: false}"))
	a := m.startAgent(cfg, "replica-a", nil)

	require.Equal(t, m.ns[slow], g.next(60*time.Second), "the slow environment's apply did not start")
	for round := 2; round <= 3; round++ {
		for _, e := range fast {
			rev := m.repo.Commit(t, m.branch(e), gitserver.Change{Write: overlay(1, fmt.Sprintf("v%d", round))})
			m.postPush(a.addr, m.branch(e))
			eventually(t, 30*time.Second, fmt.Sprintf("%s to sync v%d while %s is held", e, round, slow), func() bool {
				return a.rec.synced(rev)
			})
		}
	}
	require.Empty(t, configMapValue(t, m.ns[slow], "cm-000"), "the slow environment was applied while held")
	g.setOpen()
	eventually(t, 60*time.Second, "the slow environment to be applied once let through", func() bool {
		return configMapValue(t, m.ns[slow], "cm-000") == "v1"
	})
}

// The pool sizes and client limits default from the container's CPU and
// the agent's constants, and follow baton.yaml when set.
func TestWorkersAndLimits(t *testing.T) {
	w, h := Workers(config.Agent{})
	require.Equal(t, 4*runtime.GOMAXPROCS(0), w)
	require.Equal(t, 64*runtime.GOMAXPROCS(0), h)
	w, h = Workers(config.Agent{Workers: 3, HealthWaits: 10})
	require.Equal(t, []int{3, 10}, []int{w, h})

	qps, burst := KubeAPILimits(config.Agent{})
	require.Equal(t, float32(DefaultQPS), qps)
	require.Equal(t, DefaultBurst, burst)
	qps, burst = KubeAPILimits(config.Agent{KubeAPIQPS: 400})
	require.Equal(t, float32(400), qps)
	require.Equal(t, 800, burst, "the burst follows a higher rate")
	qps, _ = KubeAPILimits(config.Agent{KubeAPIQPS: -1})
	require.Negative(t, qps, "no client-side limit")
}
