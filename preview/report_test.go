package preview

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/reconciler"
)

const webDiff = `--- live/Deployment/shop/web
+++ git/Deployment/shop/web
@@ -5,12 +5,12 @@
 spec:
-  replicas: 2
+  replicas: 3
   template:
     spec:
       containers:
-      - image: registry.example/web:1.0
+      - image: registry.example/web:1.1
         name: web
         resources:
           limits:
-            memory: 128Mi
+            memory: 256Mi
`

func ref(kind, ns, name string) reconciler.ObjectRef {
	return reconciler.ObjectRef{Version: "v1", Kind: kind, Namespace: ns, Name: name}
}

func sample() reconciler.Result {
	return reconciler.Result{Changes: []reconciler.Change{
		{Ref: ref("ConfigMap", "shop", "settings"), Action: reconciler.ActionUnchanged},
		{Ref: ref("Deployment", "shop", "web"), Action: reconciler.ActionConfigured, Diff: webDiff},
		{Ref: ref("Secret", "shop", "db"), Action: reconciler.ActionConfigured,
			Diff: "--- live/Secret/shop/db\n+++ git/Secret/shop/db\n@@ -1,3 +1,3 @@\n data:\n-  password: '***** (old)'\n+  password: '***** (new)'\n"},
		{Ref: ref("ConfigMap", "shop", "old"), Action: reconciler.ActionDeleted, Diff: "--- live/ConfigMap/shop/old\n+++ git/ConfigMap/shop/old\n@@ -1,2 +0,0 @@\n-apiVersion: v1\n-kind: ConfigMap\n"},
	}}
}

func TestReportOfAPassingPreview(t *testing.T) {
	r := NewReport("staging", "0123456789abcdef0123", "scale-web", "overlays/staging", sample(), nil)
	if !r.Passed() || r.Reason() != "" || r.Changes() != 3 {
		t.Fatalf("passed %v reason %q changes %d", r.Passed(), r.Reason(), r.Changes())
	}
	if got := r.Summary(); got != "3 objects would change: 2 configured, 1 pruned (1 unchanged)" {
		t.Errorf("summary %q", got)
	}
	web := r.Objects[0]
	if want := []string{"image registry.example/web:1.0 → registry.example/web:1.1", "replicas 2 → 3", "memory 128Mi → 256Mi"}; strings.Join(web.Highlights, "|") != strings.Join(want, "|") {
		t.Errorf("highlights %q, want %q", web.Highlights, want)
	}
	c := r.Comment(0)
	for _, want := range []string{
		Marker("staging") + "\n", "### Baton preview: `staging` ✅ would sync",
		"| configured | `Deployment/shop/web` | `image registry.example/web:1.0 → registry.example/web:1.1`<br>`replicas 2 → 3`<br>`memory 128Mi → 256Mi` |",
		"| pruned | `ConfigMap/shop/old` |  |",
		"<details><summary>configured Deployment/shop/web</summary>\n\n```diff\n--- live/Deployment/shop/web\n",
		"`baton diff --env staging --revision scale-web`",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("comment lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "ConfigMap/shop/settings") {
		t.Error("an unchanged object is listed")
	}

	// The text holds the same objects, highlights and diffs.
	var text bytes.Buffer
	if err := r.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	for _, o := range r.Objects {
		if !strings.Contains(text.String(), o.Diff) || !strings.Contains(strings.ReplaceAll(c, "\u200b", ""), o.Diff) {
			t.Errorf("%s: diff missing from the text or the comment", o.Ref)
		}
		for _, h := range o.Highlights {
			if !strings.Contains(text.String(), h) {
				t.Errorf("text lacks highlight %q", h)
			}
		}
	}
	if !strings.HasSuffix(text.String(), "\n"+r.Summary()+"\n") {
		t.Errorf("text does not end with the summary:\n%s", text.String())
	}
}

func TestReportOfAFailingPreview(t *testing.T) {
	res := sample()
	res.Changes = append(res.Changes,
		reconciler.Change{Ref: ref("Job", "shop", "migrate"), Action: reconciler.ActionFailed,
			Err: errors.New("Job/shop/migrate: spec.template: field is immutable")},
		reconciler.Change{Ref: ref("Service", "shop", "web"), Action: reconciler.ActionFailed, Err: errors.New("forbidden")})
	r := NewReport("staging", "0123456789abcdef", "", "overlays/staging", res, nil)
	if r.Passed() || r.Reason() != "Job/shop/migrate: spec.template: field is immutable (and 1 more refused)" {
		t.Errorf("passed %v, reason %q", r.Passed(), r.Reason())
	}
	if c := r.Comment(0); !strings.Contains(c, "❌ would fail") || !strings.Contains(c, "| failed | `Service/shop/web` | `forbidden` |") {
		t.Errorf("comment:\n%s", c)
	}

	bad := NewReport("staging", "0123456789abcdef", "pr", "overlays/staging", reconciler.Result{},
		errors.New("render overlays/staging:\n  web.yaml: line 3: mapping values are not allowed"))
	if bad.Passed() || bad.Reason() != "render overlays/staging: web.yaml: line 3: mapping values are not allowed" {
		t.Errorf("failure: passed %v reason %q", bad.Passed(), bad.Reason())
	}
	if c := bad.Comment(0); !strings.Contains(c, "**No object was compared:** `render overlays/staging: web.yaml: line 3: mapping values are not allowed`") {
		t.Errorf("comment:\n%s", c)
	}
}

// A revision refused as a whole lists each refused object with its rule
// and file, and its reason starts with the first of them.
func TestReportOfARefusedRevision(t *testing.T) {
	refused := &reconciler.RefusedError{Violations: []reconciler.Violation{
		{Ref: ref("ConfigMap", "kube-public", "planted"), Source: "base/planted.yaml:1", Rule: reconciler.RuleNamespace,
			Reason: `namespace "kube-public" is not in the environment's scope (scope.namespaces [shop])`},
		{Ref: reconciler.ObjectRef{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding", Name: "admin"},
			Rule: reconciler.RuleClusterKind, Reason: "cluster-scoped kind ClusterRoleBinding.rbac.authorization.k8s.io is not in the environment's scope"},
	}}
	r := NewReport("staging", "0123456789abcdef", "pr", "overlays/staging", reconciler.Result{},
		fmt.Errorf("environment staging at 0123456789ab: %w", refused))
	want := "ConfigMap/kube-public/planted: refused (namespace) from base/planted.yaml:1: namespace \"kube-public\" is not in the environment's scope (scope.namespaces [shop]) (and 1 more refused)"
	if r.Passed() || r.Reason() != want {
		t.Errorf("passed %v, reason %q\nwant %q", r.Passed(), r.Reason(), want)
	}
	if c := r.Comment(0); !strings.Contains(c, "| failed | `ClusterRoleBinding/admin` | `refused (cluster-kind): cluster-scoped kind") {
		t.Errorf("comment:\n%s", c)
	}
}

// Past the size limit, diffs are left out with a note; the table still
// lists every object; one huge diff is cut, not dropped.
func TestCommentSizeLimit(t *testing.T) {
	var res reconciler.Result
	for i := range 40 {
		var d strings.Builder
		d.WriteString("--- live/x\n+++ git/x\n@@ -1,300 +1,300 @@\n")
		for j := range 500 {
			fmt.Fprintf(&d, "-  key%03d: old-value-%d\n+  key%03d: new-value-%d\n", j, i, j, i)
		}
		res.Changes = append(res.Changes, reconciler.Change{Ref: ref("ConfigMap", "shop", fmt.Sprintf("cm-%02d", i)), Action: reconciler.ActionConfigured, Diff: d.String()})
	}
	r := NewReport("prod", "abc", "big", "overlays/prod", res, nil)
	c := r.Comment(60000)
	if len(c) > 60000 {
		t.Fatalf("comment of %d bytes, limit 60000", len(c))
	}
	if !strings.Contains(c, "more objects are not shown: the comment would pass 60000 bytes") {
		t.Errorf("no note of the diffs left out")
	}
	for i := range 40 {
		if !strings.Contains(c, fmt.Sprintf("`ConfigMap/shop/cm-%02d`", i)) {
			t.Errorf("cm-%02d missing from the table", i)
		}
	}
	if !strings.Contains(c, "more lines)") {
		t.Error("a diff larger than a quarter of the limit was not cut")
	}
}

// Object names and messages from git are inert in the comment.
func TestCommentQuotesHostileText(t *testing.T) {
	res := reconciler.Result{Changes: []reconciler.Change{{
		Ref: reconciler.ObjectRef{Kind: "<img src=x onerror=alert(1)>", Name: "@admin"}, Action: reconciler.ActionFailed,
		Err:  errors.New("no kind \"<script>\" | [x](https://evil.example) @team"),
		Diff: "--- a\n+++ b\n@@ -1 +1 @@\n-```\n+</details><script>alert(1)</script> @ops\n",
	}}}
	c := NewReport("prod", "abc", "x", "overlays/prod", res, nil).Comment(0)
	for _, bad := range []string{"<img", "<script>", "@admin", "@team", "@ops", "](https://evil.example)`"} {
		outside := strings.Contains(stripCode(c), bad)
		if outside {
			t.Errorf("comment has %q outside code:\n%s", bad, c)
		}
	}
	if !strings.Contains(c, "````diff\n") {
		t.Errorf("the fence does not outgrow the backticks in the diff:\n%s", c)
	}
}

// stripCode removes code spans and fenced blocks, roughly, leaving the
// text a Markdown renderer would interpret.
func stripCode(s string) string {
	var out strings.Builder
	inFence := ""
	for _, line := range strings.SplitAfter(s, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if inFence != "" {
			if trimmed == inFence {
				inFence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			inFence = strings.TrimRight(trimmed, "abcdefghijklmnopqrstuvwxyz")
			continue
		}
		// Drop code spans: text between matching backtick runs.
		for {
			i := strings.Index(line, "`")
			if i < 0 {
				break
			}
			n := i
			for n < len(line) && line[n] == '`' {
				n++
			}
			fence := line[i:n]
			j := strings.Index(line[n:], fence)
			if j < 0 {
				break
			}
			line = line[:i] + line[n+j+len(fence):]
		}
		out.WriteString(line)
	}
	return out.String()
}
