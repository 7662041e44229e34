package promote_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/promote"
)

// squash squash-merges a pull request (see mergeWith) with the given
// extra merge options.
func (f *fixture) squash(number int, opts map[string]any) string {
	f.t.Helper()
	body := map[string]any{"Do": "squash"}
	for k, v := range opts {
		body[k] = v
	}
	return f.mergeWith(number, body)
}

// A promotion pull request squash-merged (GitHub's most common merge
// style, and Gitea's) is recognised as the promotion: its merge is
// reported once, with the pull request, and a revert of the squash commit
// holds the content. Whatever the squash message kept: the API's default
// (the title with "(#N)" only: the content and the forge recognise it), or
// a title given by the merger with the promotion branch deleted (the
// forge names the merge commit).
func TestSquashMergedPromotionIsRecognised(t *testing.T) {
	cases := map[string]func(title string) map[string]any{
		"the API's default message": func(string) map[string]any { return nil },
		"title only, branch deleted": func(title string) map[string]any {
			return map[string]any{"MergeTitleField": title, "delete_branch_after_merge": true}
		},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			c := f.commit("env/dev", "dev change", devChange())
			p := f.promoter(nil)
			dev := f.soaked("env/dev")
			opened := mustEvaluate(t, p, devToStaging, dev)
			wantResult(t, opened, promote.PullRequestOpened)
			number := opened.PullRequest.Number
			squash := f.squash(number, opts(fmt.Sprintf("%s (#%d)", opened.PullRequest.Title, number)))
			if parents := strings.Fields(f.log("-1", "--format=%P", squash)); len(parents) != 1 {
				t.Fatalf("squash commit %s has parents %v", squash, parents)
			}
			t.Logf("squash message:\n%s", f.log("-1", "--format=%B", squash))

			after := mustEvaluate(t, p, devToStaging, dev)
			wantResult(t, after, promote.Skipped)
			if len(after.Events) != 1 || after.Events[0].Kind != promote.EventMerged || after.Events[0].PullRequest != number ||
				after.Events[0].TargetCommit != squash || after.Events[0].SourceCommit != c {
				t.Fatalf("merge event %+v", after.Events)
			}
			if !slices.Equal(eventKinds(mustEvaluate(t, p, devToStaging, dev)), nil) {
				t.Fatal("the merge was reported twice")
			}

			// Staging breaks; a person reverts the squash commit.
			f.checkout("env/staging")
			f.git("revert", "--no-edit", squash)
			revert := f.push("env/staging")
			held := mustEvaluate(t, p, devToStaging, dev)
			wantResult(t, held, promote.Held)
			if len(held.Events) != 1 || held.Events[0].Kind != promote.EventHeld || held.Events[0].TargetCommit != revert {
				t.Errorf("hold event %+v", held.Events)
			}
			if open := f.openPulls(); len(open) != 0 {
				t.Fatalf("the reverted promotion was proposed again: %+v", open)
			}
		})
	}
}
