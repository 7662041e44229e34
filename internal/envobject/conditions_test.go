package envobject_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/envobject"
)

func TestConditions(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	const commitB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	type want struct{ ready, synced, healthy, reconciling, stalled metav1.ConditionStatus }
	tests := []struct {
		name   string
		change func(*envobject.Status)
		want   want
		reason string // Ready's reason
	}{
		{"healthy at head", func(*envobject.Status) {}, want{"True", "True", "True", "False", "False"}, "Ready"},
		{"a newer head waits", func(s *envobject.Status) { s.Head = &envobject.Revision{Commit: commitB} },
			want{"False", "False", "True", "True", "False"}, "Pending"},
		{"suspended behind the head", func(s *envobject.Status) {
			s.Head = &envobject.Revision{Commit: commitB}
			s.Suspended = &envobject.Suspension{By: "alice"}
		}, want{"False", "False", "True", "False", "False"}, "Suspended"},
		{"suspended at the head stays ready", func(s *envobject.Status) { s.Suspended = &envobject.Suspension{By: "alice"} },
			want{"True", "True", "True", "False", "False"}, "Ready"},
		{"the last pass failed", func(s *envobject.Status) { s.LastSync.Result, s.LastSync.Error = "failure", "apply: forbidden" },
			want{"False", "False", "True", "False", "True"}, "SyncFailed"},
		{"degraded", func(s *envobject.Status) { s.Health.Status, s.Health.Cause = "Degraded", "crashloop" },
			want{"False", "True", "False", "False", "True"}, "Degraded"},
		{"rolling out", func(s *envobject.Status) { s.Health.Status = "Progressing" },
			want{"False", "True", "False", "True", "False"}, "Progressing"},
		{"never synced", func(s *envobject.Status) { s.Synced, s.LastSync, s.Health = nil, nil, envobject.Health{} },
			want{"False", "Unknown", "Unknown", "True", "False"}, "NotSynced"},
		{"verdict about an older revision", func(s *envobject.Status) { s.Health.Revision = commitB },
			want{"False", "True", "Unknown", "False", "False"}, "NoVerdict"},
	}
	for _, tc := range tests {
		st := healthyStatus(now)
		tc.change(&st)
		envobject.SetConditions(&st, 3, now)
		got := func(t string) metav1.ConditionStatus {
			c := meta.FindStatusCondition(st.Conditions, t)
			require.NotNil(nil, c)
			require.EqualValues(nil, 3, c.ObservedGeneration)
			return c.Status
		}
		require.Equal(t, tc.want, want{got("Ready"), got("Synced"), got("Healthy"), got("Reconciling"), got("Stalled")}, tc.name)
		require.Equal(t, tc.reason, meta.FindStatusCondition(st.Conditions, "Ready").Reason, tc.name)
		require.EqualValues(t, 3, st.ObservedGeneration)
	}
}

// A condition keeps its transition time while its status holds, and Ready
// only counts for the generation it was computed for.
func TestConditionTransitionsAndGeneration(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	st := healthyStatus(t0)
	envobject.SetConditions(&st, 1, t0)
	t1 := metav1.NewTime(t0.Add(time.Minute))
	envobject.SetConditions(&st, 1, t1)
	require.Equal(t, t0, meta.FindStatusCondition(st.Conditions, "Ready").LastTransitionTime)
	st.Health.Status = "Degraded"
	envobject.SetConditions(&st, 1, t1)
	require.Equal(t, t1, meta.FindStatusCondition(st.Conditions, "Ready").LastTransitionTime)

	e := &envobject.Environment{Status: healthyStatus(t0)}
	e.Generation = 2
	envobject.SetConditions(&e.Status, 1, t0)
	require.False(t, envobject.Ready(e), "Ready for an older generation")
	envobject.SetConditions(&e.Status, 2, t0)
	require.True(t, envobject.Ready(e))
}
