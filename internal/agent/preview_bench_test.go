package agent

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkPreview measures pull request previews on the local Gitea, its
// webhooks pointed at a running agent: the time from a push to an open
// pull request until its comment shows the new head and the status is
// final (s/preview), with the forge requests and comment size of each
// run, against the baseline measured in the same run: a push to an
// environment branch until the agent has synced it (s/sync), through the
// same webhook, git server and cluster.
//
//	go test -run '^$' -bench BenchmarkPreview -benchtime 5x ./internal/agent/
func BenchmarkPreview(b *testing.B) {
	c := newCockpit(b, false)
	waitSynced(b, c, c.git("rev-parse", "env/staging"))
	c.commit("bench", "env/staging", "start", map[string]string{"base/web.yaml": webDeployment(3, "")})
	number := c.openPR("bench", "env/staging", "Bench")
	c.waitPreview(number, c.staging, c.git("rev-parse", "bench"), time.Minute)
	runs := len(c.logs.previews(number))

	var preview, sync time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		head := c.commit("bench", "env/staging", fmt.Sprint("replicas ", 10+i), map[string]string{"base/web.yaml": webDeployment(10+i, "")})
		c.waitPreview(number, c.staging, head, time.Minute)
		preview += time.Since(start)

		start = time.Now()
		commit := c.commit("env/dev", "env/dev", fmt.Sprint("dev ", i), map[string]string{"base/web.yaml": webDeployment(20+i, "")})
		waitEnvSynced(b, c, c.dev, commit)
		sync += time.Since(start)
	}
	b.StopTimer()
	calls, bytes, n := 0.0, 0.0, 0.0
	for _, rec := range c.logs.previews(number)[runs:] {
		calls += rec["apiCalls"].(float64)
		bytes += rec["commentBytes"].(float64)
		n++
	}
	b.ReportMetric(preview.Seconds()/float64(b.N), "s/preview")
	b.ReportMetric(sync.Seconds()/float64(b.N), "s/sync")
	b.ReportMetric(preview.Seconds()/sync.Seconds(), "preview/sync")
	b.ReportMetric(calls/n, "apicalls/preview")
	b.ReportMetric(bytes/n, "commentbytes")
}

// BenchmarkPreviewLargeDiff previews a pull request that changes many
// objects, each with a long diff: the comment stops at the size limit
// (forge.preview.maxCommentBytes, 60000) with a note. It reports the
// comment's size, how many object diffs it shows of how many, the largest
// diff it shows, and the time from push to comment.
//
//	go test -run '^$' -bench BenchmarkPreviewLargeDiff -benchtime 1x ./internal/agent/
func BenchmarkPreviewLargeDiff(b *testing.B) {
	const objects, keys = 150, 40
	c := newCockpit(b, false)
	files := map[string]string{}
	var list []string
	for i := range objects {
		name := fmt.Sprintf("cm-%03d.yaml", i)
		list = append(list, name)
		files["base/"+name] = bigConfigMap(i, keys, "one")
	}
	files["base/kustomization.yaml"] = "resources: [web.yaml, settings.yaml, secret.yaml, " + strings.Join(list, ", ") + "]\n"
	start := c.commit("env/staging", "env/staging", "many ConfigMaps", files)
	waitEnvSynced(b, c, c.staging, start)

	b.ResetTimer()
	var took time.Duration
	var body string
	for i := range b.N {
		changed := map[string]string{}
		for j := range objects {
			changed[fmt.Sprintf("base/cm-%03d.yaml", j)] = bigConfigMap(j, keys, fmt.Sprint("two-", i))
		}
		t0 := time.Now()
		head := c.commit(fmt.Sprint("large-", i), "env/staging", "change them all", changed)
		number := c.openPR(fmt.Sprint("large-", i), "env/staging", "Large")
		cm, _ := c.waitPreview(number, c.staging, head, 2*time.Minute)
		took += time.Since(t0)
		body = cm.Body
	}
	b.StopTimer()
	shown := strings.Count(body, "<details>")
	largest := 0
	for _, block := range strings.Split(body, "<details>")[1:] {
		largest = max(largest, len(block))
	}
	b.ReportMetric(float64(len(body)), "commentbytes")
	b.ReportMetric(float64(shown), "diffs-shown")
	b.ReportMetric(float64(objects), "diffs-total")
	b.ReportMetric(float64(largest), "largest-diff-bytes")
	b.ReportMetric(took.Seconds()/float64(b.N), "s/preview")
	if !strings.Contains(body, "are not shown") {
		b.Fatalf("no size note in a %d-byte comment", len(body))
	}
}

func bigConfigMap(i, keys int, value string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-%03d\ndata:\n", i)
	for k := range keys {
		fmt.Fprintf(&b, "  key-%02d: %s-%02d\n", k, value, k)
	}
	return b.String()
}

func waitSynced(tb testing.TB, c *cockpit, commit string) {
	tb.Helper()
	waitEnvSynced(tb, c, c.staging, commit)
	waitEnvSynced(tb, c, c.dev, commit)
}

// waitEnvSynced waits until env is synced at commit.
func waitEnvSynced(tb testing.TB, c *cockpit, env, commit string) {
	tb.Helper()
	eventually(tb, 2*time.Minute, env+" synced at "+commit[:7], func() bool {
		for _, e := range c.agent.agent.Status().Environments {
			if e.Name == env && e.Synced != nil && e.Synced.Commit == commit {
				return true
			}
		}
		return false
	})
}
