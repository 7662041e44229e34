package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// An edge with revertOnUnhealthy: a promotion that leaves the target
// degraded is reverted by the agent that syncs the target (here one agent
// syncs both ends), the target recovers, the revert is reported as such
// (not as "blocked"), and the reverted content is held.
func TestRevertsAPromotionThatLeavesTheTargetDegraded(t *testing.T) {
	// Staging uses base/staging, which patches the app with a file that is
	// promoted from dev but that dev does not use: a release can be healthy
	// in dev and crash in staging.
	patch := func(label string) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  template:\n    metadata:\n      labels: {%s}\n", label)
	}
	f := newFixture(t, map[string]string{
		"base/app/kustomization.yaml":         "resources: [app.yaml]\n",
		"base/app/app.yaml":                   deployment("app", ""),
		"base/staging/kustomization.yaml":     "resources: [../app]\npatches: [{path: patch.yaml}]\n",
		"base/staging/patch.yaml":             patch("tier: web"),
		"overlays/dev/kustomization.yaml":     "resources: [../../base/app]\n",
		"overlays/staging/kustomization.yaml": "resources: [../../base/staging]\n",
	})
	cfg, dev, staging := f.pipelineConfig(pipelineOptions{interval: "2s", stagingNS: env.Namespace(t),
		stagingHealth: "{timeout: 60s, soak: 1s}", syncStaging: true, edge: ", revertOnUnhealthy: true"})
	a := f.startAgent(cfg, "reverter", nil)
	first := f.repo.Head(t, "env/staging")
	eventually(t, 60*time.Second, "staging synced", func() bool { return a.rec.synced(first) })

	// The bad release: healthy in dev, crash-looping in staging.
	bad := f.repo.Commit(t, "env/dev", gitserver.Change{Message: "bad release",
		Write: map[string]string{"base/staging/patch.yaml": patch(`tier: web, testenv.baton.dev/failure: crashloop`)}})
	require.Equal(t, 200, f.postWebhook(a.addr).StatusCode)
	var promotion string
	eventually(t, 60*time.Second, "the bad release promoted to env/staging", func() bool {
		msg := gitserver.RunGit(t, f.repo.Path, nil, "log", "-1", "--format=%H%n%B", "env/staging")
		promotion, _, _ = strings.Cut(msg, "\n")
		return strings.Contains(msg, "Baton-Promoted-From: "+dev+"@"+bad)
	})
	eventually(t, 90*time.Second, "the promotion reverted on env/staging", func() bool {
		msg := gitserver.RunGit(t, f.repo.Path, nil, "log", "-1", "--format=%B", "env/staging")
		return strings.Contains(msg, "This reverts commit "+promotion)
	})
	revert := f.repo.Head(t, "env/staging")
	eventually(t, 60*time.Second, "staging synced and healthy at the revert", func() bool {
		e := a.agent.Status().Environments[1]
		return e.Synced != nil && e.Synced.Commit == revert && e.Health.Status == "Healthy"
	})

	st := a.agent.Status().Environments[1]
	require.Len(t, st.Reverts, 1)
	require.Equal(t, dev, st.Reverts[0].From)
	require.Equal(t, PromotionReverted, st.Reverts[0].Outcome, "reported as %+v", st.Reverts[0])
	require.Equal(t, revert, st.Reverts[0].Commit)
	a.rec.mu.Lock()
	reverted := 0
	for _, p := range a.rec.promotions {
		if p.Outcome == PromotionReverted && p.From == dev && p.To == staging && p.Revision == promotion {
			reverted++
		}
	}
	a.rec.mu.Unlock()
	require.Equal(t, 1, reverted, "the revert is recorded once")

	// The reverted content is held: dev stays at the bad release, and it is
	// not promoted again.
	eventually(t, 30*time.Second, "the dev -> staging edge held", func() bool {
		p := a.agent.Status().Environments[0].Promotions
		return len(p) == 1 && p[0].Revision == bad && p[0].Outcome == PromotionHeld
	})
	require.Equal(t, revert, f.repo.Head(t, "env/staging"))
}
