package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/source"
)

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	base, max := time.Second, 10*time.Second
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, backoff(n, base, max))
	}
	require.Equal(t, []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
	require.Equal(t, max, backoff(1000, base, max), "a long failure streak must not overflow")
}

func TestJitterStaysWithinItsFraction(t *testing.T) {
	d := time.Minute
	require.Equal(t, 54*time.Second, jitter(d, 0.1, 0))
	require.Equal(t, d, jitter(d, 0.1, 0.5))
	require.Less(t, jitter(d, 0.1, 0.9999), 66*time.Second)
	require.Equal(t, d, jitter(d, 0, 0.9), "no jitter")
	for range 1000 {
		j := randomJitter(d, 0.1)
		require.True(t, j >= 54*time.Second && j < 66*time.Second, "%s out of range", j)
	}
}

func TestRepositorySettingsKeepOnlyFollowedSignatureBranches(t *testing.T) {
	repo := config.Repository{Name: "deploy", RepositorySettings: source.RepositorySettings{
		URL: "https://git.example.com/acme/deploy.git", Branches: []string{"env/dev", "env/prod"},
		Signatures: &source.SignatureSettings{KeyringFile: "/k", Branches: []string{"env/prod"}},
	}}
	dev := RepositorySettings(repo, []string{"env/dev"})
	require.Equal(t, []string{"env/dev"}, dev.Branches)
	require.Nil(t, dev.Signatures, "an empty signature list would mean every branch")
	require.NoError(t, dev.Validate())

	prod := RepositorySettings(repo, []string{"env/prod"})
	require.Equal(t, []string{"env/prod"}, prod.Signatures.Branches)
	require.Equal(t, []string{"env/prod"}, repo.Signatures.Branches, "the configuration was changed")

	repo.Signatures.Branches = nil // every branch
	all := RepositorySettings(repo, []string{"env/dev"})
	require.NotNil(t, all.Signatures)
	require.Empty(t, all.Signatures.Branches)
}

func TestReadiness(t *testing.T) {
	b := newStatusBoard("me", RoleStandby, []EnvironmentStatus{{Name: "dev"}, {Name: "prod"}})
	ok, role, _ := b.ready()
	require.True(t, ok, "a standby is ready")
	require.Equal(t, RoleStandby, role)

	b.setRole(RoleLeader)
	ok, _, pending := b.ready()
	require.False(t, ok)
	require.Equal(t, []string{"dev", "prod"}, pending)
	b.markAttempted("dev")
	b.markAttempted("prod")
	ok, _, _ = b.ready()
	require.True(t, ok)

	// A new leadership starts over.
	b.setRole(RoleStandby)
	b.setRole(RoleLeader)
	ok, _, _ = b.ready()
	require.False(t, ok)
}

func TestStatusSnapshotIsACopy(t *testing.T) {
	b := newStatusBoard("me", RoleLeader, []EnvironmentStatus{{Name: "dev"}})
	b.update("dev", func(s *EnvironmentStatus) {
		s.LastSync = &SyncInfo{Counts: map[string]int{"created": 1}}
		s.Drifted = []string{"ConfigMap/a/b"}
	})
	snap := b.snapshot()
	snap.Environments[0].LastSync.Counts["created"] = 99
	snap.Environments[0].Drifted[0] = "changed"
	again := b.snapshot()
	require.Equal(t, 1, again.Environments[0].LastSync.Counts["created"])
	require.Equal(t, "ConfigMap/a/b", again.Environments[0].Drifted[0])
}

func TestPromotionResultMapping(t *testing.T) {
	tests := []struct {
		in   promote.Outcome
		want PromotionResult
	}{
		{promote.Outcome{Result: promote.Promoted, Commit: "c"}, PromotionResult{Outcome: PromotionPushed, Commit: "c"}},
		{promote.Outcome{Result: promote.PullRequestOpened, PullRequest: &promote.PullRequest{URL: "https://pr/1"}},
			PromotionResult{Outcome: PromotionPullRequest, PullRequestURL: "https://pr/1"}},
		{promote.Outcome{Result: promote.PullRequestCurrent, PullRequest: &promote.PullRequest{URL: "https://pr/1"}},
			PromotionResult{Outcome: PromotionPullRequest, PullRequestURL: "https://pr/1"}},
		{promote.Outcome{Result: promote.BranchPushed, CompareURL: "https://compare"},
			PromotionResult{Outcome: PromotionPullRequest, PullRequestURL: "https://compare"}},
		{promote.Outcome{Result: promote.Skipped}, PromotionResult{Outcome: PromotionUpToDate}},
		{promote.Outcome{Result: promote.Blocked, Retry: time.Second, Blocker: &promote.GateResult{Gate: "soak", Detail: "1s left"}},
			PromotionResult{Outcome: PromotionBlocked, Reason: "soak", Detail: "1s left", Retry: time.Second}},
		{promote.Outcome{Result: promote.Frozen, Blocker: &promote.GateResult{Gate: promote.GateFrozen, Detail: "crashloop"}},
			PromotionResult{Outcome: PromotionFrozen, Reason: promote.GateFrozen, Detail: "crashloop"}},
		{promote.Outcome{Result: promote.Held}, PromotionResult{Outcome: PromotionHeld}},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, promotionResult(tc.in), string(tc.in.Result))
	}
}

// The configuration's example pipelines are ones the promote package accepts,
// with each edge soaking for its source environment's health.soak.
func TestExamplePipelineIsValidForPromote(t *testing.T) {
	cfg, err := config.Load("../config/testdata/baton.yaml")
	require.NoError(t, err)
	pl := pipeline(cfg, cfg.PipelineOf("dev"))
	require.NoError(t, pl.Validate())
	require.Equal(t, "shop", pl.Name)
	require.Len(t, pl.Edges, 2)
	require.Equal(t, promote.Edge{From: "dev", To: "staging", Policy: promote.PolicyAuto, Soak: 2 * time.Minute}, pl.Edges[0])
	require.Equal(t, 10*time.Minute, pl.Edges[1].Soak)
	require.Equal(t, []promote.QueryGate{{Name: "error-rate",
		Query: `sum(rate(http_requests_total{namespace="shop-staging",code=~"5.."}[5m]))`, Op: promote.Less, Threshold: 0.5}},
		pl.Edges[1].Queries)
	require.Equal(t, promote.Environment{Name: "prod", Branch: "env/prod", Overlay: "overlays/prod"}, pl.Environments[2])
	billing := pipeline(cfg, cfg.PipelineOf("billing-prod"))
	require.NoError(t, billing.Validate())
	require.Equal(t, []promote.Edge{{From: "billing-dev", To: "billing-prod", Policy: promote.PolicyPullRequest, Soak: 2 * time.Minute}}, billing.Edges)
}
