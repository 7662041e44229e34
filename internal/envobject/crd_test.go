package envobject_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/envobject"
)

const commitA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"

// healthyStatus is what an agent writes for an environment synced at its
// branch head and healthy.
func healthyStatus(now metav1.Time) envobject.Status {
	rev := &envobject.Revision{Commit: commitA, Subject: "bump api", Time: now}
	st := envobject.Status{Agent: "baton-0", Branch: "env/prod", Path: "overlays/prod", Revision: commitA[:12],
		Head: rev, Synced: rev, SyncedAt: &now, Soak: "2m0s",
		LastSync: &envobject.Sync{Time: now, Revision: commitA, Result: "success", Duration: "1.2s", Counts: map[string]int{"unchanged": 5}},
		Health:   envobject.Health{Status: "Healthy", Message: "5/5 objects ready", Since: &now, Revision: commitA}}
	return st
}

// The CRD installs on a real API server, its schema is structural (an
// invalid status is refused by field), the agent's writes land in status
// only, and kubectl's table view shows the printer columns.
func TestCRDOnTheAPIServer(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, envobject.InstallCRD(ctx, env.Config()))
	ns := env.Namespace(t)
	c := envobject.NewClient(env.Dynamic(t), ns)

	require.NoError(t, c.Ensure(ctx, "prod"))
	e, err := c.Get(ctx, "prod")
	require.NoError(t, err)
	require.Equal(t, "prod", e.Labels[envobject.LabelEnvironment])
	require.EqualValues(t, 1, e.Generation)

	now := metav1.NewTime(time.Now().Truncate(time.Second))
	st := healthyStatus(now)
	st.Drifted, st.DriftCount = []string{"Deployment/shop/web"}, 1
	st.Promotion = "staging: pull-request"
	envobject.SetConditions(&st, e.Generation, now)
	require.NoError(t, c.ApplyStatus(ctx, "prod", st))

	// People's spec and the agent's status live side by side.
	_, err = c.SetSuspend(ctx, "prod", true, "alice", "INC-42: bad config")
	require.NoError(t, err)
	e, err = c.Get(ctx, "prod")
	require.NoError(t, err)
	require.True(t, e.Spec.Suspend)
	require.Equal(t, "alice", e.Spec.SuspendedBy)
	require.EqualValues(t, 2, e.Generation, "a spec change bumps the generation")
	require.Equal(t, "Healthy", e.Status.Health.Status, "the spec patch kept the status")

	// kubectl get environments: the printer columns, as a Table.
	table := getTable(t, ns, "prod", false)
	require.Equal(t, []string{"Name", "Ready", "Revision", "Health", "Cause", "Last Sync", "Drifted", "Suspended", "Promotion", "Age"}, table.names)
	require.Equal(t, "prod", table.row[0])
	require.Equal(t, "True", table.row[1])
	require.Equal(t, commitA[:12], table.row[2])
	require.Equal(t, "Healthy", table.row[3])
	require.EqualValues(t, 1, table.row[6])
	require.Equal(t, true, table.row[7])
	require.Equal(t, "staging: pull-request", table.row[8])
	wide := getTable(t, ns, "prod", true)
	require.Contains(t, wide.names, "Suspended By")
	require.Contains(t, wide.row, "alice")
	require.Contains(t, wide.row, "INC-42: bad config")

	// The structural schema refuses a bad condition status, naming the field.
	obj := map[string]any{"apiVersion": envobject.APIVersion, "kind": envobject.Kind,
		"metadata": map[string]any{"name": "prod", "namespace": ns},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "Maybe", "reason": "X", "message": "", "lastTransitionTime": now.UTC().Format(time.RFC3339)}}}}
	_, err = env.Dynamic(t).Resource(envobject.GVR).Namespace(ns).ApplyStatus(ctx, "prod", &unstructured.Unstructured{Object: obj},
		metav1.ApplyOptions{FieldManager: "test", Force: true})
	require.Error(t, err)
	require.Regexp(t, `status\.conditions\[\d\]\.status: Unsupported value: "Maybe"`, err.Error())

	// Resume clears the suspension.
	_, err = c.SetSuspend(ctx, "prod", false, "", "")
	require.NoError(t, err)
	e, err = c.Get(ctx, "prod")
	require.NoError(t, err)
	require.False(t, e.Spec.Suspend)
	require.Empty(t, e.Spec.SuspendedBy)
}

// Wait is `kubectl wait --for=condition=Ready`: it returns once the agent
// reports the environment ready for its current generation, and times out
// otherwise.
func TestWaitForReady(t *testing.T) {
	ctx := t.Context()
	require.NoError(t, envobject.InstallCRD(ctx, env.Config()))
	ns := env.Namespace(t)
	c := envobject.NewClient(env.Dynamic(t), ns)
	require.NoError(t, c.Ensure(ctx, "staging"))

	now := metav1.NewTime(time.Now().Truncate(time.Second))
	progressing := healthyStatus(now)
	progressing.Health = envobject.Health{Status: "Progressing", Message: "1/3 replicas", Revision: commitA}
	envobject.SetConditions(&progressing, 1, now)
	require.NoError(t, c.ApplyStatus(ctx, "staging", progressing))

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := c.Wait(short, "staging", envobject.Ready)
	require.ErrorIs(t, err, context.DeadlineExceeded, "Ready while progressing")

	ready := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		_, err := c.Wait(wctx, "staging", envobject.Ready)
		ready <- err
	}()
	healthy := healthyStatus(now)
	healthy.Conditions = progressing.Conditions
	envobject.SetConditions(&healthy, 1, metav1.Now())
	require.NoError(t, c.ApplyStatus(ctx, "staging", healthy))
	select {
	case err := <-ready:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("Wait did not return within 60s of the environment turning Ready")
	}
}

type tableView struct {
	names []string
	row   []any
}

// getTable asks for the object as kubectl get does (a meta.k8s.io Table).
func getTable(t *testing.T, ns, name string, wide bool) tableView {
	t.Helper()
	cfg := env.Config()
	gv := envobject.GVR.GroupVersion()
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.UnversionedRESTClientFor(cfg)
	require.NoError(t, err)
	req := rc.Get().AbsPath("/apis", envobject.Group, envobject.Version, "namespaces", ns, envobject.Resource, name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	raw, err := req.DoRaw(t.Context())
	require.NoError(t, err)
	var tbl metav1.Table
	require.NoError(t, json.Unmarshal(raw, &tbl))
	var v tableView
	for _, c := range tbl.ColumnDefinitions {
		if wide || c.Priority == 0 {
			v.names = append(v.names, c.Name)
		}
	}
	require.Len(t, tbl.Rows, 1)
	for i, cell := range tbl.Rows[0].Cells {
		if wide || tbl.ColumnDefinitions[i].Priority == 0 {
			v.row = append(v.row, cell)
		}
	}
	require.False(t, strings.Contains(string(raw), `"status":"Failure"`))
	return v
}
