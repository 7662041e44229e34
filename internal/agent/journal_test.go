package agent

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// A promotion that landed while no agent ran (here a person carried dev's
// release to staging with Baton's trailer) is reported by the next agent:
// the merged audit event, once (its record is kept in the cluster), and a
// deployment of staging even though it is the first revision that agent
// syncs (the inventory knows the one before).
func TestPromotionLandedWhileDownIsReported(t *testing.T) {
	f := newFixture(t, appFiles())
	cfg, dev, staging := f.pipelineConfig(pipelineOptions{interval: "2s", stagingNS: env.Namespace(t), syncStaging: true})
	first := f.repo.Head(t, "env/staging")
	a := f.startAgent(cfg, "before", nil)
	evaluated := func(r *countingRecorder) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, p := range r.promotions {
			if p.Outcome == PromotionUpToDate {
				return true
			}
		}
		return false
	}
	eventually(t, 60*time.Second, "both synced and dev's edge evaluated past its soak", func() bool {
		return a.rec.synced(first) && evaluated(a.rec)
	})
	a.stop(t)

	// While no agent runs: a release in dev, carried to staging by hand.
	v2 := f.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{"base/app.yaml": configMapApp("2")}, Message: "app 2"})
	landed := f.repo.Commit(t, "env/staging", gitserver.Change{Write: map[string]string{"base/app.yaml": configMapApp("2")},
		Message: fmt.Sprintf("promote %s@%s to %s by hand\n\nBaton-Promoted-From: %s@%s\n", dev, v2[:7], staging, dev, v2)})

	b := f.startAgent(cfg, "after", nil)
	eventually(t, 60*time.Second, "staging synced at the promotion", func() bool { return b.rec.synced(landed) })
	b.rec.mu.Lock()
	for _, s := range b.rec.syncs {
		if s.Environment == staging && s.Revision == landed {
			require.Equal(t, first, s.PreviousRevision, "the revision before, from the inventory")
			break
		}
	}
	b.rec.mu.Unlock()
	merged := func(r *countingRecorder) []PromotionEvent {
		r.mu.Lock()
		defer r.mu.Unlock()
		var out []PromotionEvent
		for _, p := range r.promotions {
			for _, ev := range p.Events {
				if ev.Kind == "merged" {
					out = append(out, ev)
				}
			}
		}
		return out
	}
	eventually(t, 60*time.Second, "the landed promotion reported", func() bool { return len(merged(b.rec)) > 0 })
	ev := merged(b.rec)[0]
	require.Equal(t, landed, ev.TargetCommit)
	require.Equal(t, v2, ev.SourceCommit)
	cm, err := env.Clientset(t).CoreV1().ConfigMaps(f.agentNS).Get(t.Context(), JournalConfigMap, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, landed, cm.Data[dev+"."+staging], "recorded in the cluster")
	b.stop(t)

	// Another restart does not report it again.
	c := f.startAgent(cfg, "again", nil)
	eventually(t, 60*time.Second, "dev's edge evaluated again", func() bool { return evaluated(c.rec) })
	require.Empty(t, merged(c.rec), "reported again after a restart")
}
