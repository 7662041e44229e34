package promote_test

import (
	"strings"
	"testing"

	"github.com/baton-gitops/baton/promote"
)

// A rollback by hand (baton rollback) on an auto edge: the last promotion
// in effect is reverted even when a later, unrelated commit followed it;
// a later commit that touched the same files is refused; --to goes back
// to an older commit, reverting every promotion after it in one commit
// that holds them all.
func TestRevertByHand(t *testing.T) {
	f := newFixture(t)
	initial := f.branchHead("env/staging")
	p := f.promoter(func(o *promote.Options) {
		o.Pipeline.Edges = []promote.Edge{{From: "dev", To: "staging", Policy: promote.PolicyAuto}, {From: "staging", To: "prod"}}
	})
	who := promote.RevertRequest{By: "alice", Reason: "INC-7"}
	if _, err := p.Revert(t.Context(), devToStaging, who); err == nil || !strings.Contains(err.Error(), "no promotion from dev is in effect on env/staging") {
		t.Fatalf("revert without a promotion: %v", err)
	}

	f.commit("env/dev", "dev change", devChange())
	first := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, first, promote.Promoted)
	c2 := f.commit("env/dev", "second dev change", map[string]string{"apps/new.yaml": "feature: off\n"})
	dev := f.soaked("env/dev")
	second := mustEvaluate(t, p, devToStaging, dev)
	wantResult(t, second, promote.Promoted)
	hand := f.commit("env/staging", "a note by hand", map[string]string{"NOTES.md": "on call\n"})

	if _, err := p.Revert(t.Context(), devToStaging, promote.RevertRequest{By: "alice"}); err == nil {
		t.Fatal("a revert without a reason was accepted")
	}
	out, err := p.Revert(t.Context(), devToStaging, who)
	if err != nil {
		t.Fatal(err)
	}
	wantResult(t, out, promote.Reverted)
	if out.SourceCommit != c2 || f.branchHead("env/staging") != out.Commit {
		t.Fatalf("reverted %s into %s; staging at %s", out.SourceCommit, out.Commit, f.branchHead("env/staging"))
	}
	if got := f.show(out.Commit, "apps/new.yaml"); got != "feature: on" {
		t.Errorf("apps/new.yaml after the revert: %q", got)
	}
	if got := f.show(out.Commit, "NOTES.md"); got != "on call" {
		t.Errorf("the later commit %s was undone: NOTES.md %q", hand, got)
	}
	msg := f.log("-1", "--format=%B", out.Commit)
	if !strings.Contains(msg, "This reverts commit "+second.Commit+".") || !strings.Contains(msg, "Baton-Revert-Reason: rollback by alice: INC-7") {
		t.Errorf("revert message:\n%s", msg)
	}
	wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.Held)

	// A later commit on the same file as the last promotion in effect.
	f.commit("env/staging", "edit by hand", map[string]string{"base/deployment.yaml": deployment("hallo")})
	if _, err := p.Revert(t.Context(), devToStaging, who); err == nil || !strings.Contains(err.Error(), "base/deployment.yaml, which the promotion") {
		t.Fatalf("revert over a later edit of the same file: %v", err)
	}

	// Back to the initial layout: one commit, the initial tree, every
	// promotion since reverted.
	back, err := p.Revert(t.Context(), devToStaging, promote.RevertRequest{To: initial[:10], By: "alice", Reason: "back to the start"})
	if err != nil {
		t.Fatal(err)
	}
	wantResult(t, back, promote.Reverted)
	f.git("fetch", "-q", "origin")
	if diff := f.git("diff", initial, back.Commit); diff != "" {
		t.Errorf("--to did not restore the initial tree:\n%s", diff)
	}
	msg = f.log("-1", "--format=%B", back.Commit)
	for _, c := range []string{first.Commit, second.Commit} {
		if !strings.Contains(msg, "This reverts commit "+c+".") {
			t.Errorf("--to revert does not name %s:\n%s", c, msg)
		}
	}
	wantResult(t, mustEvaluate(t, p, devToStaging, dev), promote.Held)
}
