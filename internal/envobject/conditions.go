package envobject

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/githash"
)

// Health statuses the conditions read (health.Overall's values).
const (
	healthHealthy     = "Healthy"
	healthProgressing = "Progressing"
	healthDegraded    = "Degraded"
)

// Sync results the conditions read (the agent's SyncInfo.Result).
const (
	syncSucceeded = "success"
	syncFailed    = "failure"
)

// SetConditions computes st's conditions from the rest of st, for the
// spec at generation, keeping each condition's LastTransitionTime when its
// status did not change. Pure: now is the transition time of a change.
//
//   - Synced: the branch head is applied (False while a newer head waits,
//     is suspended, or failed to apply; Unknown before the first pass).
//   - Healthy: the synced revision's objects are ready.
//   - Ready: Synced and Healthy.
//   - Reconciling (kstatus): a sync or rollout is under way.
//   - Stalled (kstatus): the last pass failed or the rollout is degraded.
func SetConditions(st *Status, generation int64, now metav1.Time) {
	set := func(t string, s metav1.ConditionStatus, reason, msg string) {
		c := metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: generation,
			LastTransitionTime: now}
		meta.SetStatusCondition(&st.Conditions, c)
	}
	st.ObservedGeneration = generation

	synced, syncReason, syncMsg := syncedCondition(st)
	set(ConditionSynced, synced, syncReason, syncMsg)
	healthy, healthReason, healthMsg := healthyCondition(st)
	set(ConditionHealthy, healthy, healthReason, healthMsg)
	switch {
	case synced == metav1.ConditionTrue && healthy == metav1.ConditionTrue:
		set(ConditionReady, metav1.ConditionTrue, "Ready", fmt.Sprintf("%s is applied and healthy", githash.Short(st.Synced.Commit)))
	case synced != metav1.ConditionTrue:
		set(ConditionReady, metav1.ConditionFalse, syncReason, syncMsg)
	default:
		set(ConditionReady, metav1.ConditionFalse, healthReason, healthMsg)
	}
	stalled := syncReason == "SyncFailed" || syncReason == "SourceError" || healthReason == healthDegraded
	reconciling := !stalled && (syncReason == "Pending" || syncReason == "NotSynced" || healthReason == healthProgressing)
	if stalled {
		reason, msg := syncReason, syncMsg
		if syncReason != "SyncFailed" && syncReason != "SourceError" {
			reason, msg = healthReason, healthMsg
		}
		set(ConditionStalled, metav1.ConditionTrue, reason, msg)
	} else {
		set(ConditionStalled, metav1.ConditionFalse, "NotStalled", "")
	}
	if reconciling {
		reason, msg := syncReason, syncMsg
		if synced == metav1.ConditionTrue {
			reason, msg = healthReason, healthMsg
		}
		set(ConditionReconciling, metav1.ConditionTrue, reason, msg)
	} else {
		set(ConditionReconciling, metav1.ConditionFalse, "NotReconciling", "")
	}
}

func syncedCondition(st *Status) (metav1.ConditionStatus, string, string) {
	switch {
	case st.LastSync != nil && st.LastSync.Result == syncFailed:
		return metav1.ConditionFalse, "SyncFailed", st.LastSync.Error
	case st.Head == nil && st.SourceError != "":
		return metav1.ConditionFalse, "SourceError", st.SourceError
	case st.Synced == nil && st.Suspended != nil:
		return metav1.ConditionFalse, "Suspended", "suspended before its first sync"
	case st.Synced == nil:
		return metav1.ConditionUnknown, "NotSynced", "no revision applied yet"
	case st.Head != nil && st.Head.Commit != st.Synced.Commit && st.Suspended != nil:
		return metav1.ConditionFalse, "Suspended", fmt.Sprintf("suspended at %s; the branch is at %s", githash.Short(st.Synced.Commit), githash.Short(st.Head.Commit))
	case st.Head != nil && st.Head.Commit != st.Synced.Commit:
		return metav1.ConditionFalse, "Pending", fmt.Sprintf("%s is applied; %s is next", githash.Short(st.Synced.Commit), githash.Short(st.Head.Commit))
	}
	return metav1.ConditionTrue, "Synced", fmt.Sprintf("%s is applied", githash.Short(st.Synced.Commit))
}

func healthyCondition(st *Status) (metav1.ConditionStatus, string, string) {
	h := st.Health
	if st.Synced == nil || h.Status == "" || h.Revision != st.Synced.Commit {
		return metav1.ConditionUnknown, "NoVerdict", "no health verdict on the synced revision yet"
	}
	msg := h.Message
	if h.Cause != "" {
		msg = h.Cause + ": " + msg
	}
	switch h.Status {
	case healthHealthy:
		return metav1.ConditionTrue, healthHealthy, msg
	case healthProgressing:
		return metav1.ConditionFalse, healthProgressing, msg
	case healthDegraded:
		return metav1.ConditionFalse, healthDegraded, msg
	}
	return metav1.ConditionUnknown, h.Status, msg
}

// Ready reports whether e's Ready condition is True for its current
// generation: what `kubectl wait --for=condition=Ready` waits for.
func Ready(e *Environment) bool {
	c := meta.FindStatusCondition(e.Status.Conditions, ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == e.Generation
}
