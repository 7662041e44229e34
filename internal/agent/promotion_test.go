package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// The agent promotes through the promote package for real: once dev is
// synced and has been healthy for its soak, an auto edge pushes the
// promotion commit to staging's branch. Before the soak it is blocked.
func TestPromotesAfterTheSoak(t *testing.T) {
	f := newFixture(t, appFiles())
	cfg, dev, staging := f.pipelineConfig(pipelineOptions{interval: "1h"})
	a := f.startAgent(cfg, "promoter", nil)
	first := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "dev synced", func() bool { return a.rec.synced(first) })

	v2 := f.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/app.yaml": configMapApp("2")}, Message: "app 2"})
	require.Equal(t, 200, f.postWebhook(a.addr).StatusCode)
	eventually(t, 30*time.Second, "the promotion pushed to env/staging", func() bool {
		return strings.Contains(gitserver.RunGit(t, f.repo.Path, nil, "show", "env/staging:base/app.yaml"), `version: "2"`)
	})
	msg := gitserver.RunGit(t, f.repo.Path, nil, "log", "-1", "--format=%an%n%B", "env/staging")
	require.Contains(t, msg, "Baton Bot")
	require.Contains(t, msg, "Baton-Promoted-From: "+dev+"@"+v2)

	// The recorder saw the soak block it first, then the push.
	eventually(t, 5*time.Second, "the push recorded", func() bool {
		a.rec.mu.Lock()
		defer a.rec.mu.Unlock()
		for _, p := range a.rec.promotions {
			if p.Revision == v2 && p.Outcome == PromotionPushed {
				return true
			}
		}
		return false
	})
	a.rec.mu.Lock()
	var outcomes []string
	for _, p := range a.rec.promotions {
		if p.Revision == v2 {
			outcomes = append(outcomes, p.Outcome+"/"+p.Reason)
		}
	}
	a.rec.mu.Unlock()
	require.Equal(t, PromotionBlocked+"/soak", outcomes[0], "outcomes: %v", outcomes)

	st := a.agent.Status().Environments[0]
	require.Len(t, st.Promotions, 1)
	p := st.Promotions[0]
	require.Equal(t, staging, p.To)
	require.Equal(t, v2, p.Revision)
	require.Contains(t, []string{PromotionPushed, PromotionUpToDate}, p.Outcome)
}
