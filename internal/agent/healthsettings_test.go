package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv"
)

// withObjects is the overlay plus extra manifests.
func withObjects(objects map[string]string) map[string]string {
	files := overlay(1, "v1")
	for name, manifest := range objects {
		files["overlay/"+name] = manifest
		files["overlay/kustomization.yaml"] += "  - " + name + "\n"
	}
	return files
}

const loadBalancer = `apiVersion: v1
kind: Service
metadata:
  name: edge
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 443}]
`

// The environment's health settings reach the checker. The test control
// plane has no load-balancer controller, like kind, minikube or bare
// metal: by default a LoadBalancer Service is not waited for, and the
// environment is healthy; with loadBalancers: wait it is not, and the
// message says which setting to change.
func TestLoadBalancerSetting(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, withObjects(map[string]string{"edge.yaml": loadBalancer}))
		a := f.startAgent(f.config(f.configYAML(time.Hour, "health: {timeout: 10m}", "", "")), "solo", nil)
		head := f.repo.Head(t, "env/dev")
		eventually(t, 30*time.Second, "the environment healthy", func() bool {
			h := a.agent.Status().Environments[0].Health
			return h.Revision == head && h.Status == "Healthy"
		})
	})
	t.Run("wait", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, withObjects(map[string]string{"edge.yaml": loadBalancer}))
		a := f.startAgent(f.config(f.configYAML(time.Hour, "health: {timeout: 2s, loadBalancers: wait}", "", "")), "solo", nil)
		head := f.repo.Head(t, "env/dev")
		// The wait's own verdict, from the recorder.
		var h HealthRecord
		eventually(t, 30*time.Second, "the wait to time out on the Service", func() bool {
			a.rec.mu.Lock()
			defer a.rec.mu.Unlock()
			for _, r := range a.rec.health {
				if r.Revision == head && r.Status == "Degraded" && r.WaitDuration > 0 {
					h = r
					return true
				}
			}
			return false
		})
		require.Equal(t, "timeout", h.Cause)
		require.Contains(t, h.Message, "Service "+f.appNS+"/edge: waiting for a load-balancer address")
		require.Contains(t, h.Message, "health.loadBalancers: skip")
		// The monitor that follows the wait keeps the verdict: still not
		// ready past the deadline is still Degraded, not back to Progressing.
		eventually(t, 30*time.Second, "the monitor's report on the Service", func() bool {
			h := a.agent.Status().Environments[0].Health
			return strings.HasPrefix(h.Message, "still not ready after the timeout: ")
		})
		now := a.agent.Status().Environments[0].Health
		require.Equal(t, "Degraded", now.Status)
		require.Equal(t, "timeout", now.Cause)
		require.Contains(t, now.Message, "Service "+f.appNS+"/edge: waiting for a load-balancer address")
	})
}

// restartThreshold reaches both the agent's wait and `baton status`'s
// one-off check: the crash-looping stage restarts 4 times, which is past
// the default threshold (3), a certain failure at once, but not past 5.
func TestRestartThresholdSetting(t *testing.T) {
	f := newFixture(t, withObjects(map[string]string{"web.yaml": deployment("web", testenv.FailCrashLoop)}))
	cfg := f.config(f.configYAML(time.Hour, "health: {timeout: 3s, restartThreshold: 5}", "", ""))
	a := f.startAgent(cfg, "solo", nil)
	head := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "a verdict", func() bool {
		h := a.agent.Status().Environments[0].Health
		return h.Revision == head && h.Status == "Degraded"
	})
	h := a.agent.Status().Environments[0].Health
	require.Equal(t, "crashloop", h.Cause)
	// Below the threshold the crash loop is not certain: the wait ran to
	// its timeout instead of ending at once.
	require.True(t, strings.HasPrefix(h.Message, "timed out after 3s: "), "message %q", h.Message)

	st, err := ComputeStatus(t.Context(), ComputeOptions{Config: cfg, REST: env.Config(), CacheDir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "Progressing", st.Environments[0].Health.Status, "status %+v", st.Environments[0].Health)
	require.Equal(t, "crashloop", st.Environments[0].Health.Cause)

	cfg.Environments[0].Health.RestartThreshold = nil // the default, 3
	st, err = ComputeStatus(t.Context(), ComputeOptions{Config: cfg, REST: env.Config(), CacheDir: t.TempDir()})
	require.NoError(t, err)
	require.Equal(t, "Degraded", st.Environments[0].Health.Status, "status %+v", st.Environments[0].Health)
}
