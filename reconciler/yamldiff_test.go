package reconciler

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func lines(s ...string) []string {
	out := make([]string, len(s))
	for i, l := range s {
		out[i] = l + "\n"
	}
	return out
}

func TestUnifiedDiff(t *testing.T) {
	t.Run("equal", func(t *testing.T) {
		assert.Empty(t, unifiedDiff("a", "b", lines("x", "y"), lines("x", "y")))
	})
	t.Run("one changed line with context", func(t *testing.T) {
		a := lines("1", "2", "3", "4", "5", "6", "7", "8", "9")
		b := lines("1", "2", "3", "4", "FIVE", "6", "7", "8", "9")
		want := "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+FIVE\n 6\n 7\n 8\n"
		assert.Equal(t, want, unifiedDiff("a", "b", a, b))
	})
	t.Run("two distant changes make two hunks", func(t *testing.T) {
		var a, b []string
		for i := range 20 {
			l := string(rune('a'+i)) + "\n"
			a = append(a, l)
			b = append(b, l)
		}
		b[1] = "B\n"
		b[18] = "S\n"
		d := unifiedDiff("a", "b", a, b)
		assert.Equal(t, 2, strings.Count(d, "@@ -"), d)
		assert.Contains(t, d, "@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n")
		assert.Contains(t, d, "@@ -16,5 +16,5 @@\n p\n q\n r\n-s\n+S\n t\n")
	})
	t.Run("close changes merge into one hunk", func(t *testing.T) {
		a := lines("1", "2", "3", "4", "5", "6", "7", "8")
		b := lines("1", "X", "3", "4", "5", "6", "Y", "8")
		d := unifiedDiff("a", "b", a, b)
		assert.Equal(t, 1, strings.Count(d, "@@ -"), d)
		assert.Contains(t, d, "@@ -1,8 +1,8 @@\n")
	})
	t.Run("create from nothing", func(t *testing.T) {
		assert.Equal(t, "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n", unifiedDiff("a", "b", nil, lines("x", "y")))
	})
	t.Run("delete to nothing", func(t *testing.T) {
		assert.Equal(t, "--- a\n+++ b\n@@ -1 +0,0 @@\n-x\n", unifiedDiff("a", "b", lines("x"), nil))
	})
	t.Run("insertion in the middle", func(t *testing.T) {
		d := unifiedDiff("a", "b", lines("1", "2", "3"), lines("1", "2", "new", "3"))
		assert.Equal(t, "--- a\n+++ b\n@@ -1,3 +1,4 @@\n 1\n 2\n+new\n 3\n", d)
	})
}

func TestEditScriptFallsBackOnHugeInput(t *testing.T) {
	// Above the LCS bound the middle is one replacement: still a diff that
	// turns a into b.
	n := 2100
	a, b := make([]string, n), make([]string, n)
	for i := range n {
		a[i] = "a" + strings.Repeat("x", i%7) + "\n"
		b[i] = "b" + strings.Repeat("x", i%7) + "\n"
	}
	ops := editScript(a, b)
	var gotA, gotB []string
	for _, op := range ops {
		if op.kind != '+' {
			gotA = append(gotA, op.line)
		}
		if op.kind != '-' {
			gotB = append(gotB, op.line)
		}
	}
	assert.Equal(t, a, gotA)
	assert.Equal(t, b, gotB)
}

func TestObjectDiffMasksSecrets(t *testing.T) {
	live := obj(t, `
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop, resourceVersion: "7"}
type: Opaque
data: {user: YWRtaW4=, password: b2xk, gone: eA==}
`)
	desired := obj(t, `
apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: Opaque
data: {user: YWRtaW4=, password: bmV3, added: eQ==}
`)
	ref := ObjectRef{Version: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}
	d, err := objectDiff(ref, live, desired)
	require.NoError(t, err)
	for _, secret := range []string{"YWRtaW4=", "b2xk", "bmV3", "eA==", "eQ=="} {
		assert.NotContains(t, d, secret)
	}
	assert.Contains(t, d, "--- live/Secret/shop/db\n+++ git/Secret/shop/db\n")
	assert.Contains(t, d, "-  password: '***** (old)'\n")
	assert.Contains(t, d, "+  password: '***** (new)'\n")
	assert.Contains(t, d, "-  gone: '*****'\n")
	assert.Contains(t, d, "+  added: '*****'\n")
	assert.Contains(t, d, "   user: '*****'\n", "unchanged keys stay as context, masked")
	assert.NotContains(t, d, "resourceVersion")

	// The caller's objects are not modified by masking.
	v, _, _ := unstructuredString(live, "data", "password")
	assert.Equal(t, "b2xk", v)

	same, err := objectDiff(ref, live, live)
	require.NoError(t, err)
	assert.Empty(t, same)
}

func TestObjectDiffPlainObject(t *testing.T) {
	live := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1, uid: x}\ndata: {a: '1', b: '2'}\n")
	desired := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: ns1}\ndata: {a: '1', b: '3'}\n")
	d, err := objectDiff(ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "ns1", Name: "c"}, live, desired)
	require.NoError(t, err)
	assert.Equal(t, "--- live/ConfigMap/ns1/c\n+++ git/ConfigMap/ns1/c\n@@ -1,7 +1,7 @@\n apiVersion: v1\n data:\n   a: \"1\"\n-  b: \"2\"\n+  b: \"3\"\n kind: ConfigMap\n metadata:\n   name: c\n", d)
}

// kubectl apply (client-side) leaves the whole Secret, values included, in
// an annotation: it is masked like the values, on either side of a diff.
func TestObjectDiffMasksTheLastAppliedConfigurationOfSecrets(t *testing.T) {
	applied := func(pw string) string {
		return `{"apiVersion":"v1","data":{"password":"` + pw + `"},"kind":"Secret","metadata":{"name":"db","namespace":"shop"}}`
	}
	secret := func(pw, annotation string) *unstructured.Unstructured {
		o := obj(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ndata: {password: "+pw+"}\n")
		if annotation != "" {
			o.SetAnnotations(map[string]string{annotationLastApplied: annotation, "team": "payments"})
		}
		return o
	}
	ref := ObjectRef{Version: "v1", Kind: "Secret", Namespace: "shop", Name: "db"}
	for name, tc := range map[string]struct {
		live, desired *unstructured.Unstructured
		want          []string
	}{
		"changed": {secret("b2xk", applied("b2xk")), secret("bmV3", applied("bmV3")),
			[]string{"-    " + annotationLastApplied + ": '***** (old)'\n", "+    " + annotationLastApplied + ": '***** (new)'\n"}},
		"same, values changed": {secret("b2xk", applied("b2xk")), secret("bmV3", applied("b2xk")), nil},
		"dropped":              {secret("b2xk", applied("b2xk")), secret("b2xk", ""), []string{"-    " + annotationLastApplied + ": '*****'\n"}},
		"added":                {secret("b2xk", ""), secret("b2xk", applied("b2xk")), []string{"+    " + annotationLastApplied + ": '*****'\n"}},
		"pruned":               {secret("b2xk", applied("b2xk")), nil, []string{"-    " + annotationLastApplied + ": '*****'\n"}},
		"created":              {nil, secret("bmV3", applied("bmV3")), []string{"+    " + annotationLastApplied + ": '*****'\n"}},
		"others kept":          {nil, secret("bmV3", applied("bmV3")), []string{"+    team: payments\n"}},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := objectDiff(ref, tc.live, tc.desired)
			require.NoError(t, err)
			for _, leak := range []string{"b2xk", "bmV3", `"password"`} {
				assert.NotContains(t, d, leak)
			}
			for _, w := range tc.want {
				assert.Contains(t, d, w)
			}
		})
	}
	// A ConfigMap's annotation is shown: only Secrets hold secrets.
	cm := obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\n")
	cm.SetAnnotations(map[string]string{annotationLastApplied: `{"data":{"a":"1"}}`})
	d, err := objectDiff(ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "c"}, nil, cm)
	require.NoError(t, err)
	assert.Contains(t, d, `{"data":{"a":"1"}}`)
}
