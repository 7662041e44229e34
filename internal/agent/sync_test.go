package agent

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

func getStatus(t *testing.T, base string) Status {
	t.Helper()
	resp, err := http.Get(base + PathStatus)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var s Status
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
	return s
}

func httpCode(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A commit on the branch is applied within one poll interval, and the
// agent reports it: readiness, status, one recorded sync per pass.
func TestAppliesACommitWithinOnePoll(t *testing.T) {
	f := newFixture(t, overlay(2, "v1"))
	const interval = 2 * time.Second
	a := f.startAgent(f.config(f.configYAML(interval, "", "", "")), "solo", nil)

	first := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "the first revision applied", func() bool { return a.rec.synced(first) })
	require.Equal(t, "v1", configMapValue(t, f.appNS, "cm-000"))
	eventually(t, 5*time.Second, "readiness", func() bool {
		code, _ := httpCode(t, a.addr+PathReadyz)
		return code == http.StatusOK
	})

	second := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(2, "v2"), Message: "bump to v2"})
	committed := time.Now()
	eventually(t, interval+interval/10+5*time.Second, "the commit applied within one poll", func() bool {
		return configMapValue(t, f.appNS, "cm-001") == "v2"
	})
	t.Logf("applied %s after %s", second[:8], time.Since(committed).Round(time.Millisecond))

	eventually(t, 10*time.Second, "status to show the synced revision and health", func() bool {
		s := getStatus(t, a.addr)
		e := s.Environments[0]
		return e.Synced != nil && e.Synced.Commit == second && e.Health.Status == "Healthy" && e.Health.Revision == second
	})
	s := getStatus(t, a.addr)
	require.Equal(t, RoleLeader, s.Role)
	e := s.Environments[0]
	require.Equal(t, f.env, e.Name)
	require.Equal(t, "env/dev", e.Branch)
	require.Equal(t, "bump to v2", e.Synced.Subject)
	require.Equal(t, SyncSucceeded, e.LastSync.Result)
	require.Equal(t, second, e.Head.Commit)

	inv, found := f.loadInventory()
	require.True(t, found)
	require.Equal(t, second, inv.Revision)
	require.Len(t, inv.Entries, 2)
}

// A signed push webhook makes the agent poll at once: the commit is applied
// within a second, although the poll interval is an hour.
func TestWebhookAppliesWithinASecond(t *testing.T) {
	f := newFixture(t, overlay(2, "v1"))
	a := f.startAgent(f.config(f.configYAML(time.Hour, "", "", "")), "solo", nil)
	first := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "the first revision applied", func() bool { return a.rec.synced(first) })

	// An unsigned or wrongly signed push is refused and triggers nothing.
	resp, err := http.Post(a.addr+PathWebhook, "application/json", strings.NewReader(`{"repository":"x","ref":"refs/heads/env/dev"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(2, "v2")})
	sent := time.Now()
	resp = f.postWebhook(a.addr)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	eventually(t, time.Second-time.Since(sent), "the commit applied within a second of the webhook", func() bool {
		return configMapValue(t, f.appNS, "cm-000") == "v2"
	})
	t.Logf("applied %s after the webhook", time.Since(sent).Round(time.Millisecond))
}

// A newer revision interrupts the health wait of the previous one: a
// rollout that never becomes ready does not hold the next commit back for
// the health timeout.
func TestNewerRevisionInterruptsHealthWait(t *testing.T) {
	files := overlay(1, "v1")
	files["overlay/deploy.yaml"] = deployment("web", testenv.FailNotReady)
	files["overlay/kustomization.yaml"] += "  - deploy.yaml\n"
	f := newFixture(t, files)
	a := f.startAgent(f.config(f.configYAML(time.Hour, "health: {timeout: 10m}", "", "")), "solo", nil)
	first := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "the first revision applied", func() bool { return a.rec.synced(first) })
	eventually(t, 10*time.Second, "the agent to wait on the unready rollout", func() bool {
		s := a.agent.Status().Environments[0]
		return s.Synced != nil && s.Synced.Commit == first && s.Health.Status == ""
	})

	files = overlay(1, "v2")
	files["overlay/deploy.yaml"] = deployment("web", "")
	files["overlay/kustomization.yaml"] += "  - deploy.yaml\n"
	second := f.repo.Commit(t, "env/dev", gitserver.Change{Write: files})
	require.Equal(t, http.StatusOK, f.postWebhook(a.addr).StatusCode)
	eventually(t, 20*time.Second, "the newer revision applied and healthy", func() bool {
		s := a.agent.Status().Environments[0]
		return a.rec.synced(second) && s.Health.Revision == second && s.Health.Status == "Healthy"
	})
	// The first revision got no verdict: its wait was cancelled.
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	for _, h := range a.rec.health {
		require.NotEqual(t, first, h.Revision, "the interrupted wait recorded a verdict: %+v", h)
	}
}

func deployment(name, failure string) string {
	labels := "app: " + name
	if failure != "" {
		labels += "\n        " + testenv.FailureLabel + ": " + failure
	}
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 1
  selector:
    matchLabels:
      app: %s
  template:
    metadata:
      labels:
        %s
    spec:
      containers:
        - name: app
          image: registry.example/%s:1
`, name, name, labels, name)
}
