package promote_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/baton-gitops/baton/promote"
	"github.com/baton-gitops/baton/promote/promql"
)

// prometheus serves the Prometheus HTTP API's /api/v1/query with the
// answer the test sets. No real Prometheus runs in the test environment
// until the observability issue brings one, so the test serves the API
// itself, in its documented format.
type prometheus struct {
	answer atomic.Value // string: the JSON answer
	status atomic.Int32
	srv    *httptest.Server
}

func newPrometheus(t *testing.T) *prometheus {
	p := &prometheus{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(p.status.Load()))
		io.WriteString(w, p.answer.Load().(string))
	}))
	t.Cleanup(p.srv.Close)
	p.set(200, "0")
	return p
}

// set answers with a one-sample vector of value, or with status and a
// Prometheus error when status is not 200.
func (p *prometheus) set(status int, value string) {
	p.status.Store(int32(status))
	if status != 200 {
		p.answer.Store(`{"status":"error","errorType":"execution","error":"` + value + `"}`)
		return
	}
	p.answer.Store(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1764219600,"` + value + `"]}]}}`)
}

// A PromQL gate that fails blocks the promotion with its reason; once it
// passes the pull request opens.
func TestFailingQueryGateBlocks(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	prom := newPrometheus(t)
	client, err := promql.New(prom.srv.URL, promql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := f.promoter(func(o *promote.Options) {
		o.Querier = client
		o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Queries: []promote.QueryGate{{
			Name: "error-ratio", Op: promote.Less, Threshold: 0.05,
			Query: `sum(rate(http_requests_total{code=~"5..",env="dev"}[5m])) / sum(rate(http_requests_total{env="dev"}[5m]))`,
		}}}}
	})
	st := f.soaked("env/dev")
	prom.set(200, "0.2")
	out := mustEvaluate(t, p, devToStaging, st)
	wantResult(t, out, promote.Blocked)
	if out.Blocker.Gate != "error-ratio" || out.Blocker.Detail != "0.2 is not < 0.05" {
		t.Errorf("blocker %+v", out.Blocker)
	}
	prom.set(503, "query timed out")
	out = mustEvaluate(t, p, devToStaging, st)
	wantResult(t, out, promote.Blocked)
	if !strings.Contains(out.Blocker.Detail, "query timed out") {
		t.Errorf("blocker %+v does not say why the query failed", out.Blocker)
	}
	if h := f.branchHead(promote.PromotionBranch(devToStaging)); h != "" || len(f.openPulls()) != 0 {
		t.Fatalf("a blocked promotion wrote: branch %q", h)
	}
	prom.set(200, "0.01")
	out = mustEvaluate(t, p, devToStaging, st)
	wantResult(t, out, promote.PullRequestOpened)
	if msg := f.log("-1", "--format=%B", out.Commit); !strings.Contains(msg, "error-ratio passed (0.01 < 0.05)") {
		t.Errorf("gates trailer:\n%s", msg)
	}
}

// An unhealthy source freezes promotions out of it: nothing is written,
// the open pull request gets one comment per freeze (also across a
// restart), and the freeze lifts when it is healthy again.
func TestUnhealthySourceFreezesAndComments(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(nil)
	opened := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, opened, promote.PullRequestOpened)
	number := opened.PullRequest.Number

	// dev syncs a newer commit and goes unhealthy.
	c2 := f.commit("env/dev", "breaking change", map[string]string{"apps/config.yaml": "greeting: boom\n"})
	sick := promote.SourceState{Revision: f.synced("env/dev"), SyncedAt: f.clock.Now(), Healthy: false,
		Reason: "Deployment/default/web: CrashLoopBackOff (exit code 1)"}
	out := mustEvaluate(t, p, devToStaging, sick)
	wantResult(t, out, promote.Frozen)
	if len(out.Events) != 1 || out.Events[0].Kind != promote.EventFrozen || out.Events[0].SourceCommit != c2 {
		t.Errorf("events %+v", out.Events)
	}
	if !strings.Contains(out.Blocker.Detail, "CrashLoopBackOff") {
		t.Errorf("blocker %+v", out.Blocker)
	}
	comments := f.comments(number)
	if len(comments) != 1 || !strings.Contains(comments[0], "Promotion frozen") || !strings.Contains(comments[0], "CrashLoopBackOff") {
		t.Fatalf("comments %q", comments)
	}
	// Every later loop, and a restarted promoter, stay silent.
	wantResult(t, mustEvaluate(t, p, devToStaging, sick), promote.Frozen)
	restarted := f.promoter(nil)
	wantResult(t, mustEvaluate(t, restarted, devToStaging, sick), promote.Frozen)
	if got := len(f.comments(number)); got != 1 {
		t.Fatalf("%d comments after repeated evaluations, want 1", got)
	}
	if got := f.branchHead(promote.PromotionBranch(devToStaging)); got != opened.Commit {
		t.Errorf("the frozen promotion branch moved to %s", got)
	}

	healthy := f.soaked("env/dev")
	out = mustEvaluate(t, p, devToStaging, healthy)
	wantResult(t, out, promote.PullRequestUpdated)
	if k := eventKinds(out); len(k) != 2 || k[0] != promote.EventUnfrozen || k[1] != promote.EventPullRequestUpdated {
		t.Errorf("events after recovery %v", k)
	}
}

// A revert of a promotion on prod holds that content: the same source
// commit, and a newer one with the same promotable content, are not
// promoted again; newer content is.
func TestRevertOfPromotionHolds(t *testing.T) {
	f := newFixture(t)
	c1 := f.commit("env/staging", "staging gets bonjour", map[string]string{"base/deployment.yaml": deployment("bonjour")})
	p := f.promoter(nil)
	st := f.soaked("env/staging")
	out := mustEvaluate(t, p, stagingToProd, st)
	wantResult(t, out, promote.PullRequestOpened)
	merge := f.merge(out.PullRequest.Number)

	// Prod breaks; a person reverts the merge.
	f.checkout("env/prod")
	f.git("revert", "-m", "1", "--no-edit", merge)
	revert := f.push("env/prod")
	if got := f.show(revert, "base/deployment.yaml"); !strings.Contains(got, "hello") {
		t.Fatalf("revert did not restore prod:\n%s", got)
	}

	held := mustEvaluate(t, p, stagingToProd, st)
	wantResult(t, held, promote.Held)
	if len(held.Events) != 1 || held.Events[0].Kind != promote.EventHeld || held.Events[0].SourceCommit != c1 ||
		held.Events[0].TargetCommit != revert || held.Events[0].Who != "Dev Person" {
		t.Errorf("hold event %+v", held.Events)
	}
	if !strings.Contains(held.Blocker.Detail, "reverted by "+revert[:12]) {
		t.Errorf("hold detail %q", held.Blocker.Detail)
	}
	again := mustEvaluate(t, p, stagingToProd, st)
	wantResult(t, again, promote.Held)
	if len(again.Events) != 0 {
		t.Errorf("the hold was reported twice: %+v", again.Events)
	}

	// A staging-only change leaves the promotable content as reverted.
	f.commit("env/staging", "staging replicas", map[string]string{"overlays/staging/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 6\n"})
	wantResult(t, mustEvaluate(t, p, stagingToProd, f.soaked("env/staging")), promote.Held)
	if len(f.openPulls()) != 0 {
		t.Fatal("held content was proposed again")
	}

	// Newer content is promoted.
	c3 := f.commit("env/staging", "staging gets a fix", map[string]string{"base/deployment.yaml": deployment("bonjour-fixed")})
	next := mustEvaluate(t, p, stagingToProd, f.soaked("env/staging"))
	wantResult(t, next, promote.PullRequestOpened)
	if !strings.Contains(next.PullRequest.Title, c3[:12]) {
		t.Errorf("new pull request %q", next.PullRequest.Title)
	}
	if got := f.show(next.Commit, "base/deployment.yaml"); !strings.Contains(got, "bonjour-fixed") {
		t.Errorf("new promotion content:\n%s", got)
	}
}

// The optional revert: on an auto edge Baton pushes the revert of a
// promotion that left the target unhealthy; on a pull-request edge it
// opens a revert pull request. Either way the content is held afterwards.
func TestRevertOnUnhealthy(t *testing.T) {
	t.Run("auto edge pushes the revert", func(t *testing.T) {
		f := newFixture(t)
		c := f.commit("env/dev", "dev change", devChange())
		before := f.branchHead("env/staging")
		p := f.promoter(func(o *promote.Options) {
			o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto, RevertOnUnhealthy: true}, {From: "staging", To: "prod"}}
		})
		dev := f.soaked("env/dev")
		promoted := mustEvaluate(t, p, devToStaging, dev)
		wantResult(t, promoted, promote.Promoted)

		staging := promote.SourceState{Revision: f.synced("env/staging"), Healthy: false, Reason: "Deployment/default/web: OOMKilled"}
		out, err := p.Rollback(t.Context(), devToStaging, staging)
		if err != nil {
			t.Fatal(err)
		}
		wantResult(t, out, promote.Reverted)
		head := f.branchHead("env/staging")
		if head != out.Commit {
			t.Fatalf("staging at %s, want the revert %s", head, out.Commit)
		}
		f.git("fetch", "-q", "origin")
		if diff := f.git("diff", before, head); diff != "" {
			t.Errorf("the revert does not restore staging:\n%s", diff)
		}
		if msg := f.log("-1", "--format=%B", head); !strings.Contains(msg, "This reverts commit "+promoted.Commit) || !strings.Contains(msg, "OOMKilled") {
			t.Errorf("revert message:\n%s", msg)
		}
		if len(out.Events) != 1 || out.Events[0].Kind != promote.EventReverted || out.Events[0].SourceCommit != c {
			t.Errorf("events %+v", out.Events)
		}
		// Healthy again → nothing to do; the reverted content is held.
		healthy := promote.SourceState{Revision: f.synced("env/staging"), Healthy: true}
		if again, err := p.Rollback(t.Context(), devToStaging, healthy); err != nil || again.Result != promote.Skipped {
			t.Errorf("rollback of a healthy target: %s %v", again.Result, err)
		}
		wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.Held)
	})

	t.Run("pull-request edge opens a revert pull request", func(t *testing.T) {
		f := newFixture(t)
		f.commit("env/dev", "dev change", devChange())
		before := f.branchHead("env/staging")
		p := f.promoter(func(o *promote.Options) {
			o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", RevertOnUnhealthy: true}, {From: "staging", To: "prod"}}
		})
		dev := f.soaked("env/dev")
		opened := mustEvaluate(t, p, devToStaging, dev)
		wantResult(t, opened, promote.PullRequestOpened)
		merge := f.merge(opened.PullRequest.Number)

		staging := promote.SourceState{Revision: f.synced("env/staging"), Healthy: false, Reason: "Deployment/default/web: ImagePullBackOff"}
		if staging.Revision.Commit != merge {
			t.Fatalf("staging synced at %s, want the merge %s", staging.Revision.Commit, merge)
		}
		out, err := p.Rollback(t.Context(), devToStaging, staging)
		if err != nil {
			t.Fatal(err)
		}
		wantResult(t, out, promote.Reverted)
		if out.PullRequest == nil {
			t.Fatal("no revert pull request")
		}
		open := f.openPulls()
		if len(open) != 1 || open[0].Head.Ref != promote.RevertBranch(devToStaging) || !strings.HasPrefix(open[0].Title, "Revert ") {
			t.Fatalf("open pull requests %+v", open)
		}
		// A second loop does not open another.
		again, err := p.Rollback(t.Context(), devToStaging, staging)
		if err != nil || again.PullRequest == nil || again.PullRequest.Number != out.PullRequest.Number || len(again.Events) != 0 {
			t.Fatalf("second rollback: %+v %v", again, err)
		}
		revertMerge := f.merge(out.PullRequest.Number)
		f.git("fetch", "-q", "origin")
		if diff := f.git("diff", before, revertMerge); diff != "" {
			t.Errorf("merging the revert does not restore staging:\n%s", diff)
		}
		held := mustEvaluate(t, p, devToStaging, dev)
		wantResult(t, held, promote.Held)
	})
}
