package agent

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
