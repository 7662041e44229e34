package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/lease"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// Short leases so that a takeover happens within seconds.
const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

func leaseConfig() string {
	return fmt.Sprintf("leaderElection: {leaseName: baton-test, leaseDuration: %s, renewDeadline: %s, retryPeriod: %s}",
		leaseDuration, renewDeadline, retryPeriod)
}

// leaseHolder returns the holder of the environment's Lease: the replica
// that syncs it.
func (f *fixture) leaseHolder() string {
	f.t.Helper()
	l, err := env.Clientset(f.t).CoordinationV1().Leases(f.agentNS).Get(context.Background(),
		lease.UnitLeaseName("baton-test", f.env), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	require.NoError(f.t, err)
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Two replicas: only the leader applies; when it dies without releasing
// the Lease, the other takes over within the lease duration and applies.
func TestTwoReplicasOnlyTheLeaderApplies(t *testing.T) {
	f := newFixture(t, overlay(2, "v1"))
	cfg := f.config(f.configYAML(time.Second, "", leaseConfig(), ""))
	first := f.startAgent(cfg, "replica-a", nil)
	eventually(t, 30*time.Second, "replica-a to lead", func() bool { return first.agent.Status().Role == RoleLeader })
	second := f.startAgent(cfg, "replica-b", nil)
	eventually(t, 10*time.Second, "replica-b to see the leader", func() bool {
		s := second.agent.Status()
		return s.Role == RoleStandby && s.Leader == "replica-a"
	})
	require.Equal(t, "replica-a", f.leaseHolder())
	code, body := httpCode(t, second.addr+PathReadyz)
	require.Equal(t, 200, code, "a standby is ready: %s", body)

	v2 := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(2, "v2")})
	eventually(t, 15*time.Second, "the leader to apply v2", func() bool { return first.rec.synced(v2) })
	require.Equal(t, "v2", configMapValue(t, f.appNS, "cm-000"))
	require.Zero(t, second.rec.syncCount(), "the standby synced")

	// Kill the leader: its requests fail from now on, so it can neither
	// renew nor release the Lease.
	first.kill()
	killed := time.Now()
	eventually(t, leaseDuration+3*retryPeriod+2*time.Second, "replica-b to take over", func() bool {
		return second.agent.Status().Role == RoleLeader
	})
	took := time.Since(killed)
	t.Logf("replica-b leads %s after the kill (lease %s)", took.Round(time.Millisecond), leaseDuration)
	require.Equal(t, "replica-b", f.leaseHolder())

	v3 := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(2, "v3")})
	eventually(t, 15*time.Second, "the new leader to apply v3", func() bool {
		return second.rec.synced(v3) && configMapValue(t, f.appNS, "cm-001") == "v3"
	})
	require.False(t, first.rec.synced(v3), "the killed replica applied")
}

// SIGTERM (the context ending) during an apply abandons it safely: the
// inventory is the previous revision's or the new one's, complete, never a
// mix; the Lease is released; the next agent finishes the work.
func TestShutdownDuringApplyKeepsInventoryConsistent(t *testing.T) {
	const n = 150
	f := newFixture(t, overlay(n, "v1"))
	cfg := f.config(f.configYAML(time.Hour, "", leaseConfig(), ""))
	a := f.startAgent(cfg, "replica-a", nil)
	v1 := f.repo.Head(t, "env/dev")
	eventually(t, 60*time.Second, "v1 applied", func() bool { return a.rec.synced(v1) })

	// v2 changes every object and adds ten.
	v2files := overlay(n+10, "v2")
	v2 := f.repo.Commit(t, "env/dev", gitserver.Change{Write: v2files})
	w, err := env.Clientset(t).CoreV1().ConfigMaps(f.appNS).Watch(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	defer w.Stop()
	require.Equal(t, 200, f.postWebhook(a.addr).StatusCode)
	// Stop as soon as the first object of v2 lands: the apply is under way.
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case ev := <-w.ResultChan():
			if configMapData(ev.Object) == "v2" {
				break wait
			}
		case <-deadline:
			t.Fatal("no v2 object was applied within 30s")
		}
	}
	a.stop(t)
	require.Empty(t, f.leaseHolder(), "the Lease was not released")

	inv, found := f.loadInventory()
	require.True(t, found)
	switch inv.Revision {
	case v1:
		require.Len(t, inv.Entries, n, "v1 inventory")
		t.Log("the apply was abandoned: the inventory stayed at v1")
	case v2:
		require.Len(t, inv.Entries, n+10, "v2 inventory")
		t.Log("the apply finished before the stop: the inventory is v2")
	default:
		t.Fatalf("inventory revision %s is neither v1 nor v2", inv.Revision)
	}
	// Everything the inventory names exists.
	for _, e := range inv.Entries {
		require.NotEmpty(t, configMapValue(t, f.appNS, e.Name), "inventory names %s, which does not exist", e)
	}

	// A new agent completes the sync.
	f.startAgent(cfg, "replica-b", nil)
	eventually(t, 60*time.Second, "v2 applied by the next agent", func() bool {
		inv, _ := f.loadInventory()
		return inv.Revision == v2 && len(inv.Entries) == n+10
	})
	require.Equal(t, "v2", configMapValue(t, f.appNS, fmt.Sprintf("cm-%03d", n+9)))
}

// A replica that loses the Lease and wins it back (A→B→A, an API server
// blip) resumes its environments at once: it syncs (here correcting drift
// made while it stood by) without waiting for a new commit or its resync
// interval (an hour here).
func TestRegainedLeadershipSyncsAtOnce(t *testing.T) {
	f := newFixture(t, overlay(2, "v1"))
	a, b, v1 := f.leaderAndStandby(time.Hour)

	// A is cut off: B takes over.
	a.partition(true)
	eventually(t, leaseDuration+3*retryPeriod+10*time.Second, "replica-b to take over", func() bool {
		return b.agent.Status().Role == RoleLeader && b.rec.synced(v1)
	})
	eventually(t, 10*time.Second, "replica-a to stop leading", func() bool { return a.agent.Status().Role == RoleStandby })
	a.partition(false)

	// Drift while B leads: B resyncs only after its interval.
	cm, err := env.Clientset(t).CoreV1().ConfigMaps(f.appNS).Get(t.Context(), "cm-000", metav1.GetOptions{})
	require.NoError(t, err)
	cm.Data["value"] = "edited by hand"
	_, err = env.Clientset(t).CoreV1().ConfigMaps(f.appNS).Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)

	// B stops (releasing the Lease): A leads again and syncs at once.
	syncsBefore := a.rec.syncCount()
	b.stop(t)
	eventually(t, 15*time.Second, "replica-a to lead again", func() bool { return a.agent.Status().Role == RoleLeader })
	regained := time.Now()
	eventually(t, 15*time.Second, "replica-a to sync again and correct the drift", func() bool {
		return a.rec.syncCount() > syncsBefore && configMapValue(t, f.appNS, "cm-000") == "v1"
	})
	t.Logf("drift corrected %s after replica-a led again", time.Since(regained).Round(time.Millisecond))
}

// A push webhook that reaches the standby (half of them, behind a
// Service) makes the leader sync within a second or two: the standby hands
// it over through a ConfigMap the leader watches. A storm of them costs a
// bounded number of writes.
func TestWebhookOnTheStandbyTriggersTheLeader(t *testing.T) {
	f := newFixture(t, overlay(1, "v1"))
	a, b, _ := f.leaderAndStandby(time.Hour)

	for i, value := range []string{"v2", "v3"} {
		commit := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(1, value)})
		sent := time.Now()
		require.Equal(t, 200, f.postWebhook(b.addr).StatusCode)
		eventually(t, 10*time.Second, "the leader to sync "+value+" after the standby's webhook", func() bool {
			return a.rec.synced(commit)
		})
		t.Logf("push %d: synced by the leader %s after the standby received the webhook", i+1, time.Since(sent).Round(time.Millisecond))
	}

	// A storm: 200 webhooks at the standby in a burst.
	cm := func() *corev1.ConfigMap {
		c, err := env.Clientset(t).CoreV1().ConfigMaps(f.agentNS).Get(t.Context(), "baton-test-triggers", metav1.GetOptions{})
		require.NoError(t, err)
		return c
	}
	before := cm().ResourceVersion
	commit := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(1, "v4")})
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() { f.postWebhook(b.addr) })
	}
	wg.Wait()
	eventually(t, 10*time.Second, "the leader to sync v4 after the storm", func() bool { return a.rec.synced(commit) })
	w, err := env.Clientset(t).CoreV1().ConfigMaps(f.agentNS).Watch(t.Context(), metav1.ListOptions{
		FieldSelector: "metadata.name=baton-test-triggers", ResourceVersion: before})
	require.NoError(t, err)
	defer w.Stop()
	writes := 0
	timeout := time.After(3 * time.Second)
count:
	for {
		select {
		case <-w.ResultChan():
			writes++
		case <-timeout:
			break count
		}
	}
	t.Logf("200 webhooks at the standby: %d writes of the triggers ConfigMap", writes)
	require.LessOrEqual(t, writes, 30, "the storm was not coalesced")
}

// leaderAndStandby starts replica-a, waits until it leads and applied the
// head of env/dev (v1), then starts replica-b and waits until it stands by.
func (f *fixture) leaderAndStandby(interval time.Duration) (a, b *running, v1 string) {
	f.t.Helper()
	cfg := f.config(f.configYAML(interval, "", leaseConfig(), ""))
	a = f.startAgent(cfg, "replica-a", nil)
	v1 = f.repo.Head(f.t, "env/dev")
	eventually(f.t, 30*time.Second, "replica-a to lead and apply v1", func() bool {
		return a.agent.Status().Role == RoleLeader && a.rec.synced(v1)
	})
	b = f.startAgent(cfg, "replica-b", nil)
	eventually(f.t, 10*time.Second, "replica-b to stand by", func() bool { return b.agent.Status().Leader == "replica-a" })
	return a, b, v1
}
