package promote_test

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/promote"
)

// dev synced and healthy → blocked during the soak → after it a pull
// request to staging with exactly the promotable changes and the carried
// image tag → merged through the API → staging has the promotion commit
// → evaluating again does nothing. Also measures how long the pull
// request takes to open once the gates pass.
func TestPullRequestAfterSoakAndMerge(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "say bonjour and ship web 1.1", devChange())
	p := f.promoter(nil)
	st := f.healthy("env/dev")
	if st.Revision.Commit != c {
		t.Fatalf("dev synced at %s, want %s", st.Revision.Commit, c)
	}

	out := mustEvaluate(t, p, devToStaging, st)
	wantResult(t, out, promote.Blocked)
	if out.Blocker.Gate != promote.GateSoak || out.Retry != promote.DefaultSoak {
		t.Fatalf("blocked by %+v, retry %s; want the soak, 2m", out.Blocker, out.Retry)
	}
	if h := f.branchHead(promote.PromotionBranch(devToStaging)); h != "" {
		t.Fatalf("promotion branch pushed during the soak: %s", h)
	}

	f.clock.Advance(promote.DefaultSoak)
	start := time.Now()
	out = mustEvaluate(t, p, devToStaging, st)
	elapsed := time.Since(start)
	wantResult(t, out, promote.PullRequestOpened)
	open := f.openPulls()
	if len(open) != 1 || open[0].Number != out.PullRequest.Number {
		t.Fatalf("open pull requests %+v, want exactly #%d", open, out.PullRequest.Number)
	}
	t.Logf("gates passed → pull request #%d open in %.2fs (goal < 5s)", out.PullRequest.Number, elapsed.Seconds())

	pr := open[0]
	if pr.Head.Ref != "baton/promote-dev-to-staging" || pr.Base.Ref != "env/staging" {
		t.Errorf("pull request %s → %s", pr.Head.Ref, pr.Base.Ref)
	}
	if want := "promote dev@" + c[:7] + " to staging"; pr.Title != want {
		t.Errorf("title %q, want %q", pr.Title, want)
	}
	wantFiles := []string{"added apps/new.yaml", "changed overlays/staging/kustomization.yaml", "deleted README.md", "changed base/deployment.yaml"}
	slices.Sort(wantFiles)
	if got := f.pullFiles(pr.Number); !reflect.DeepEqual(got, wantFiles) {
		t.Errorf("pull request files %v, want exactly %v", got, wantFiles)
	}
	kust := f.show(out.Commit, "overlays/staging/kustomization.yaml")
	if !strings.Contains(kust, `newTag: "1.1"`) || !strings.Contains(kust, "path: replicas.yaml") {
		t.Errorf("staging overlay after promotion:\n%s", kust)
	}
	if got := f.show(out.Commit, "overlays/staging/replicas.yaml"); !strings.Contains(got, "replicas: 2") {
		t.Errorf("staging's own patch changed:\n%s", got)
	}
	for _, want := range []string{c, "Say bonjour", "### Changed files", "added `apps/new.yaml`", "`ghcr.io/acme/web`: `1.0` → `1.1`", "soak passed"} {
		if !strings.Contains(strings.ToLower(pr.Body), strings.ToLower(want)) {
			t.Errorf("body lacks %q:\n%s", want, pr.Body)
		}
	}
	if !slices.Equal(eventKinds(out), []promote.EventKind{promote.EventPullRequestOpened}) {
		t.Errorf("events %v", out.Events)
	}
	msg := f.log("-1", "--format=%an <%ae>%n%B", out.Commit)
	for _, want := range []string{"Baton <baton@example.invalid>", "promote dev@" + c[:7] + " to staging",
		"Baton-Promoted-From: dev@" + c, "Baton-Source-Health: healthy since " + st.HealthySince.UTC().Format(time.RFC3339),
		"Baton-Gates: synced passed", "Baton-Content: sha256:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("promotion commit lacks %q:\n%s", want, msg)
		}
	}

	// The same evaluation again changes nothing.
	again := mustEvaluate(t, p, devToStaging, st)
	wantResult(t, again, promote.PullRequestCurrent)
	if again.Commit != out.Commit || len(again.Events) != 0 {
		t.Errorf("second evaluation: commit %s (want %s), events %v", again.Commit, out.Commit, again.Events)
	}

	merge := f.merge(pr.Number)
	if parents := f.log("-1", "--format=%P", merge); !strings.Contains(parents, out.Commit) {
		t.Fatalf("staging head %s has parents %s, not the promotion commit %s", merge, parents, out.Commit)
	}
	after := mustEvaluate(t, p, devToStaging, st)
	wantResult(t, after, promote.Skipped)
	if len(after.Events) != 1 || after.Events[0].Kind != promote.EventMerged || after.Events[0].PullRequest != pr.Number ||
		after.Events[0].Who != gitea.User() || after.Events[0].TargetCommit != merge {
		t.Errorf("merge event %+v", after.Events)
	}
	if len(f.openPulls()) != 0 {
		t.Error("a pull request is open after the merge")
	}

	// The next promotion lists only the commits since the merged one.
	c2 := f.commit("env/dev", "Add a worker", map[string]string{"apps/worker.yaml": "worker: 1\n"})
	next := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, next, promote.PullRequestOpened)
	var body pull
	f.api(http.MethodGet, fmt.Sprintf("/pulls/%d", next.PullRequest.Number), nil, &body)
	if !strings.Contains(body.Body, "Since dev@"+c[:7]) || !strings.Contains(body.Body, c2[:7]+"` `Add a worker`") ||
		strings.Contains(body.Body, "bonjour") {
		t.Errorf("second pull request's commit list:\n%s", body.Body)
	}
}

// The target moves while the pull request is open → the promotion is
// recomputed on the new head and the same pull request updated; a newer
// source commit updates it again.
func TestTargetMovedUpdatesPullRequest(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(nil)
	first := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, first, promote.PullRequestOpened)

	moved := f.commit("env/staging", "staging hotfix", map[string]string{"overlays/staging/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 4\n"})
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.PullRequestUpdated)
	if out.PullRequest.Number != first.PullRequest.Number || out.TargetHead != moved {
		t.Fatalf("updated #%d on %s, want #%d on %s", out.PullRequest.Number, out.TargetHead, first.PullRequest.Number, moved)
	}
	if parent := f.log("-1", "--format=%P", out.Commit); parent != moved {
		t.Errorf("promotion commit's parent %s, want the new staging head %s", parent, moved)
	}
	if got := f.show(out.Commit, "overlays/staging/replicas.yaml"); !strings.Contains(got, "replicas: 4") {
		t.Errorf("the staging hotfix was lost:\n%s", got)
	}

	c2 := f.commit("env/dev", "newer dev change", map[string]string{"apps/config.yaml": "greeting: hi\n"})
	out = mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.PullRequestUpdated)
	open := f.openPulls()
	if len(open) != 1 || open[0].Number != first.PullRequest.Number || !strings.Contains(open[0].Title, c2[:7]) {
		t.Fatalf("open pull requests %+v, want #%d titled with %s", open, first.PullRequest.Number, c2[:7])
	}
	if got := f.branchHead(promote.PromotionBranch(devToStaging)); got != out.Commit {
		t.Errorf("promotion branch at %s, want %s", got, out.Commit)
	}
}

// Two promoters evaluating the same edge at once (as two agents would
// during a leadership hand-over) → one pull request, one promotion
// commit, nothing lost.
func TestTwoPromotersOnePullRequest(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "dev change", devChange())
	st := f.soaked("env/dev")
	// Clocks a second apart, as two agents' are: their promotion commits
	// differ, so the loser's push really loses its lease.
	a, b := f.promoter(nil), f.promoter(laterClock(f))
	outs := make([]promote.Outcome, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i, p := range []*promote.Promoter{a, b} {
		go func() {
			outs[i], errs[i] = p.Evaluate(t.Context(), devToStaging, st)
			done <- i
		}()
	}
	<-done
	<-done
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("promoter %d: %v", i, errs[i])
		}
	}
	open := f.openPulls()
	if len(open) != 1 {
		t.Fatalf("%d open pull requests, want 1: %+v", len(open), open)
	}
	for i, out := range outs {
		if out.PullRequest == nil || out.PullRequest.Number != open[0].Number {
			t.Errorf("promoter %d reports %+v, want #%d", i, out.PullRequest, open[0].Number)
		}
	}
	head := f.branchHead(promote.PromotionBranch(devToStaging))
	staging := f.branchHead("env/staging")
	f.git("fetch", "-q", "origin")
	if got := f.log("--format=%H", "origin/env/staging.."+head); got != head {
		t.Errorf("promotion branch holds %q beyond staging, want the one commit %s", got, head)
	}
	if msg := f.log("-1", "--format=%B", head); !strings.Contains(msg, "Baton-Promoted-From: dev@"+c) {
		t.Errorf("promotion branch head is not the promotion of %s:\n%s", c, msg)
	}
	if parent := f.log("-1", "--format=%P", head); parent != staging {
		t.Errorf("promotion built on %s, staging is at %s", parent, staging)
	}
	if outs[0].Attempts+outs[1].Attempts < 3 {
		t.Errorf("attempts %d and %d: one promoter should have lost its lease and retried", outs[0].Attempts, outs[1].Attempts)
	}
	t.Logf("attempts: %d and %d; results %s and %s", outs[0].Attempts, outs[1].Attempts, outs[0].Result, outs[1].Result)
}

// An auto edge pushes the promotion commit to the target branch; two
// promoters racing a person's push lose nothing.
func TestAutoEdgePushesDirectly(t *testing.T) {
	f := newFixture(t)
	c := f.commit("env/dev", "dev change", devChange())
	auto := func(o *promote.Options) {
		o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto}, {From: "staging", To: "prod"}}
	}
	a, b := f.promoter(auto), f.promoter(func(o *promote.Options) { auto(o); laterClock(f)(o) })
	st := f.soaked("env/dev")
	before := f.branchHead("env/staging")

	// A person pushes a staging change at the same time; git refuses a
	// non-fast-forward, so on refusal they rebase and push again.
	human := make(chan string)
	go func() {
		defer close(human)
		dir := t.TempDir()
		run := func(args ...string) (string, error) {
			cmd := execGit(dir, args...)
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if out, err := run("clone", "-q", "-b", "env/staging", gitea.AuthenticatedURL(f.name), "."); err != nil {
			human <- "clone: " + out
			return
		}
		if err := writeFile(dir, "overlays/staging/note.yaml", "note: by hand\n"); err != nil {
			human <- err.Error()
			return
		}
		run("add", "-A")
		run("commit", "-q", "-m", "staging note by hand")
		for range 5 {
			if _, err := run("push", "-q", "origin", "env/staging"); err == nil {
				human <- ""
				return
			}
			if out, err := run("pull", "-q", "--rebase", "origin", "env/staging"); err != nil {
				human <- "pull: " + out
				return
			}
		}
		human <- "push kept failing"
	}()
	outs := make(chan promote.Outcome, 2)
	for _, p := range []*promote.Promoter{a, b} {
		go func() {
			out, err := p.Evaluate(t.Context(), promote.Edge{From: "dev", To: "staging"}, st)
			if err != nil {
				t.Errorf("evaluate: %v", err)
			}
			outs <- out
		}()
	}
	if msg := <-human; msg != "" {
		t.Fatalf("the person's push failed: %s", msg)
	}
	r1, r2 := <-outs, <-outs
	results := []promote.Result{r1.Result, r2.Result}
	slices.Sort(results)
	if !slices.Equal(results, []promote.Result{promote.Promoted, promote.Skipped}) {
		t.Fatalf("results %v, want one promoted and one skipped (equal content)", results)
	}
	head := f.branchHead("env/staging")
	f.git("fetch", "-q", "origin")
	promotions := f.log("--format=%H", "--grep=Baton-Promoted-From: dev@"+c, before+".."+head)
	if len(strings.Fields(promotions)) != 1 {
		t.Fatalf("promotion commits on staging: %q, want exactly one", promotions)
	}
	if got := f.show(head, "overlays/staging/note.yaml"); got != "note: by hand" {
		t.Errorf("the person's commit was lost: %q", got)
	}
	if got := f.show(head, "base/deployment.yaml"); !strings.Contains(got, "bonjour") {
		t.Errorf("the promotion was lost:\n%s", got)
	}
	if got := f.show(head, "overlays/staging/kustomization.yaml"); !strings.Contains(got, `newTag: "1.1"`) {
		t.Errorf("the image tag was not carried:\n%s", got)
	}
	promoted := r1
	if r2.Result == promote.Promoted {
		promoted = r2
	}
	if len(promoted.Events) != 1 || promoted.Events[0].Kind != promote.EventPromoted || promoted.Events[0].Who != "Baton" ||
		promoted.Events[0].SourceCommit != c || promoted.Events[0].TargetCommit != promoted.Commit {
		t.Errorf("promotion event %+v", promoted.Events)
	}
	if len(f.openPulls()) != 0 {
		t.Error("an auto edge opened a pull request")
	}
	// Nothing left to do.
	wantResult(t, mustEvaluate(t, a, devToStaging, st), promote.Skipped)
}

// A source commit whose promotable content equals the target's (only
// dev's own overlay changed) → nothing: no branch, no pull request.
func TestEqualContentDoesNothing(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev replicas", map[string]string{"overlays/dev/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 9\n"})
	p := f.promoter(nil)
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.Skipped)
	if len(out.Changes) != 0 || len(out.Events) != 0 {
		t.Errorf("changes %v, events %v", out.Changes, out.Events)
	}
	if h := f.branchHead(promote.PromotionBranch(devToStaging)); h != "" {
		t.Errorf("promotion branch pushed: %s", h)
	}
	if len(f.openPulls()) != 0 {
		t.Error("a pull request was opened")
	}
}

// Without a forge provider the promotion branch is pushed and the compare
// URL returned.
func TestProviderlessPushesBranch(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(func(o *promote.Options) {
		o.Forge = nil
		o.CompareURL = "https://forge.example/acme/deploy/compare/{base}...{head}"
	})
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.BranchPushed)
	if out.CompareURL != "https://forge.example/acme/deploy/compare/env/staging...baton/promote-dev-to-staging" {
		t.Errorf("compare URL %q", out.CompareURL)
	}
	if got := f.branchHead(promote.PromotionBranch(devToStaging)); got != out.Commit {
		t.Errorf("branch at %q, want %s", got, out.Commit)
	}
	if len(f.openPulls()) != 0 {
		t.Error("a pull request was opened without a provider")
	}
	again := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, again, promote.BranchPushed)
	if again.Commit != out.Commit || len(again.Events) != 0 {
		t.Errorf("second evaluation rewrote the branch: %s (was %s), events %v", again.Commit, out.Commit, again.Events)
	}
}

// A person's commit on the promotion branch is never overwritten.
func TestForeignCommitOnPromotionBranchBlocks(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(nil)
	wantResult(t, mustEvaluate(t, p, devToStaging, f.soaked("env/dev")), promote.PullRequestOpened)
	branch := promote.PromotionBranch(devToStaging)
	mine := f.commit(branch, "fix the promotion by hand", map[string]string{"apps/extra.yaml": "x: 1\n"})
	f.commit("env/dev", "newer", map[string]string{"apps/config.yaml": "greeting: hey\n"})
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.Blocked)
	if out.Blocker.Gate != promote.GateBranch || !strings.Contains(out.Blocker.Detail, "Dev Person") {
		t.Errorf("blocker %+v", out.Blocker)
	}
	if got := f.branchHead(branch); got != mine {
		t.Errorf("the person's commit was overwritten: branch at %s, want %s", got, mine)
	}
}

// The target branch missing is an error naming it.
func TestMissingTargetBranch(t *testing.T) {
	f := newFixture(t)
	p := f.promoter(func(o *promote.Options) {
		o.Pipeline.Environments = append([]promote.Environment{}, o.Pipeline.Environments...)
		o.Pipeline.Environments[1].Branch = "env/qa"
	})
	_, err := p.Evaluate(t.Context(), devToStaging, f.soaked("env/dev"))
	if err == nil || !strings.Contains(err.Error(), "env/qa") {
		t.Fatalf("error %v, want one naming env/qa", err)
	}
}
