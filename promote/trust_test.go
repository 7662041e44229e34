package promote_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/promote"
)

// A commit on the promotion branch that claims the promotion (same
// parent, same trailers, same message) but holds other content is not
// taken for Baton's: the branch is rewritten with the computed tree and
// the pull request updated.
func TestForgedPromotionBranchIsRewritten(t *testing.T) {
	f := newFixture(t)
	f.commit("env/dev", "dev change", devChange())
	p := f.promoter(nil)
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.PullRequestOpened)
	branch := promote.PromotionBranch(devToStaging)

	// Amend Baton's commit with an extra file, keeping its message and
	// parent, and force-push it.
	f.checkout(branch)
	f.write(map[string]string{"apps/backdoor.yaml": "kind: ClusterRoleBinding\n"})
	f.git("add", "-A")
	f.git("commit", "-q", "--amend", "--no-edit")
	f.git("push", "-q", "-f", "origin", branch)
	forged := f.git("rev-parse", "HEAD")
	if err := gitea.WaitBranch(t.Context(), f.name, branch, forged); err != nil {
		t.Fatal(err)
	}

	again := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, again, promote.PullRequestUpdated)
	head := f.branchHead(branch)
	if head == forged || again.Commit != head {
		t.Fatalf("branch at %s (forged %s), outcome commit %s: want a rewrite", head, forged, again.Commit)
	}
	if files := f.git("ls-tree", "-r", "--name-only", head); strings.Contains(files, "backdoor") {
		t.Errorf("the rewritten promotion still holds the forged file:\n%s", files)
	}
	if got := f.git("rev-parse", head+"^{tree}"); got != f.git("rev-parse", out.Commit+"^{tree}") {
		t.Errorf("rewritten tree %s differs from the first promotion's", got)
	}
	// Baton's own head is current from now on: nothing is rewritten.
	wantResult(t, mustEvaluate(t, p, devToStaging, f.soaked("env/dev")), promote.PullRequestCurrent)
	if got := f.branchHead(branch); got != head {
		t.Errorf("branch moved to %s on a current promotion", got)
	}
}

// Commit subjects, author names and file paths are text in the pull
// request body: rendered by the forge itself, they mention nobody, link
// nowhere, and make no HTML or formatting.
func TestHostileCommitTextIsInertInThePullRequestBody(t *testing.T) {
	f := newFixture(t)
	subject := "@" + gitea.User() + " <img src=x onerror=alert(1)> [click](https://evil.example/) **bold** ` <script>alert(2)</script> #1"
	files := devChange()
	files["apps/<b>@"+gitea.User()+"</b>.yaml"] = "x: 1\n"
	f.commit("env/dev", subject, files)
	p := f.promoter(nil)
	out := mustEvaluate(t, p, devToStaging, f.soaked("env/dev"))
	wantResult(t, out, promote.PullRequestOpened)
	body := out.PullRequest.Body
	if strings.Contains(body, "@"+gitea.User()) {
		t.Errorf("body mentions @%s:\n%s", gitea.User(), body)
	}

	// The forge's own renderer shows what readers see.
	html := renderMarkdown(t, f, body)
	for _, bad := range []string{"<img", "<script", `href="https://evil.example/"`, "<strong>bold", "<b>", `class="mention"`, `href="/` + gitea.User() + `"`} {
		if strings.Contains(html, bad) {
			t.Errorf("rendered body contains %q:\n%s", bad, html)
		}
	}
	for _, want := range []string{"&lt;img src=x onerror=alert(1)&gt;", "[click](https://evil.example/)", "**bold**"} {
		if !strings.Contains(html, want) {
			t.Errorf("rendered body lacks the literal text %q:\n%s", want, html)
		}
	}
}

// renderMarkdown renders text as Gitea renders a pull request's
// description in the fixture's repository.
func renderMarkdown(t *testing.T, f *fixture, text string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"Text": text, "Mode": "comment", "Context": gitea.URL() + gitea.User() + "/" + f.name})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gitea.APIURL()+"/markdown", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+gitea.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	html, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("render markdown: %d %v\n%s", resp.StatusCode, err, html)
	}
	return string(html)
}
