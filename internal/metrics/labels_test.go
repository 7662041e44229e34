package metrics

import (
	"errors"
	"testing"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/reconciler"
	"github.com/baton-gitops/baton/source"
)

// The closed label sets mirror constants of other packages; a value added
// there must be added here, or it is recorded as "other".
func TestLabelSetsMirrorTheProducers(t *testing.T) {
	check := func(set map[string]bool, what string, values ...string) {
		t.Helper()
		for _, v := range values {
			if !set[v] {
				t.Errorf("%s %q is not in the label set", what, v)
			}
		}
		if len(set) != len(values) {
			t.Errorf("%s: label set has %d values, the producer %d", what, len(set), len(values))
		}
	}
	check(syncResults, "sync result", agent.SyncSucceeded, agent.SyncFailed, agent.SyncSuspended)
	check(syncStages, "sync stage", agent.StageSource, agent.StageRender, agent.StageApply)
	check(applyActions, "apply action", string(reconciler.ActionCreated), string(reconciler.ActionConfigured),
		string(reconciler.ActionUnchanged), string(reconciler.ActionDeleted), string(reconciler.ActionRecreated),
		string(reconciler.ActionSkipped), string(reconciler.ActionDrifted), string(reconciler.ActionFailed))
	check(driftModes, "drift mode", string(reconciler.DriftCorrect), string(reconciler.DriftDetectOnly))
	check(promotionOutcomes, "promotion outcome", agent.PromotionPushed, agent.PromotionPullRequest,
		agent.PromotionUpToDate, agent.PromotionBlocked, agent.PromotionHeld, agent.PromotionFrozen, agent.PromotionFailed, agent.PromotionReverted)
	var kinds []string
	for _, err := range []error{source.ErrAuthFailed, source.ErrHostKeyMismatch, source.ErrUnreachable,
		source.ErrBranchMissing, source.ErrSignatureInvalid, source.ErrTimeout, source.ErrLeaseLost, source.ErrBlobTooLarge} {
		kinds = append(kinds, source.KindName(err))
	}
	check(gitErrorKinds, "git error kind", kinds...)
	if k := source.KindName(errors.New("anything else")); k != otherValue {
		t.Errorf("source's catch-all kind is %q, want %q", k, otherValue)
	}
}

func TestHealthStatusLabel(t *testing.T) {
	for in, want := range map[string]string{"Healthy": "healthy", "Progressing": "progressing", "Degraded": "degraded",
		"Unknown": "unknown", "Cancelled": "unknown", "": "unknown", "Weird": "unknown"} {
		if got := healthStatus(in); got != want {
			t.Errorf("healthStatus(%q) = %q, want %q", in, got, want)
		}
	}
}
