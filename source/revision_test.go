package source

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTrailers(t *testing.T) {
	cases := map[string]struct {
		msg  string
		want []Trailer
	}{
		"none":         {"Fix it\n", nil},
		"subject only": {"Key: value\n", nil},
		"body only":    {"Fix it\n\nSome words here.\n", nil},
		"trailers": {"Promote\n\nBody.\n\nBaton-Promoted-From: env/dev@abc\nSigned-off-by: Ada <ada@x>\n",
			[]Trailer{{"Baton-Promoted-From", "env/dev@abc"}, {"Signed-off-by", "Ada <ada@x>"}}},
		"continuation":         {"S\n\nNote: first\n  second\n", []Trailer{{"Note", "first second"}}},
		"crlf":                 {"S\r\n\r\nA: 1\r\nB: 2\r\n", []Trailer{{"A", "1"}, {"B", "2"}}},
		"mixed last paragraph": {"S\n\nA: 1\nnot a trailer\n", nil},
		"space in key":         {"S\n\nNot A: 1\n", nil},
		"trailing blank lines": {"S\n\nA: 1\n\n\n", []Trailer{{"A", "1"}}},
		"empty value":          {"S\n\nA:\n", []Trailer{{"A", ""}}},
		"url is not a trailer": {"S\n\nhttps://example.com/x\n", nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := ParseTrailers(tc.msg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseTrailers(%q) = %v, want %v", tc.msg, got, tc.want)
			}
		})
	}
}

func TestRevisionTrailerLookup(t *testing.T) {
	r := &Revision{Message: "S\n\nA: 1\nB: 2\na: 3", Trailers: ParseTrailers("S\n\nA: 1\nB: 2\na: 3")}
	if v, ok := r.Trailer("a"); !ok || v != "1" {
		t.Fatalf("Trailer(a) = %q %v, want the first match", v, ok)
	}
	if _, ok := r.Trailer("C"); ok {
		t.Fatal("missing trailer found")
	}
	if r.Subject() != "S" {
		t.Fatalf("subject %q", r.Subject())
	}
}

// TestRevisionReverts pins the one rule by which Baton (promotion holds,
// rollbacks, the DORA change-failure count, baton history) tells a revert:
// the forms git revert and Baton's rollbacks write, and near misses.
func TestRevisionReverts(t *testing.T) {
	a, b := strings.Repeat("a1", 20), strings.Repeat("b2", 20)
	cases := map[string]struct {
		msg  string
		want []string
	}{
		"git revert":  {"Revert \"web 3\"\n\nThis reverts commit " + a + ".\n", []string{a}},
		"merge":       {"Revert \"Merge pull request #4\"\n\nThis reverts commit " + a + ", reversing\nchanges made to " + b + ".\n", []string{a}},
		"of a revert": {"Revert \"Revert \"web 3\"\"\n\nThis reverts commit " + b + ".\n", []string{b}},
		"reapply":     {"Reapply \"web 3\"\n\nThis reverts commit " + b + ".\n", []string{b}},
		"rollback": {"Revert promotion of dev@1234567\n\nThis reverts commit " + a + ".\nThis reverts commit " + b +
			".\n\nBaton-Revert-Reason: rollback by alice: INC-7\n", []string{a, b}},
		"crlf":              {"Revert \"x\"\r\n\r\nThis reverts commit " + a + ".\r\n", []string{a}},
		"squashed":          {"Revert \"x\" (#9)\n\nThis reverts commit " + a + ".\n\nCo-authored-by: A <a@x>\n", []string{a}},
		"not a revert":      {"Add a worker\n", nil},
		"abbreviated hash":  {"Revert \"x\"\n\nThis reverts commit " + a[:12] + ".\n", nil},
		"inside a sentence": {"Fix\n\nAs git says, This reverts commit " + a + ".\n", nil},
		"indented":          {"Fix\n\n    This reverts commit " + a + ".\n", nil},
		"longer hash":       {"Revert\n\nThis reverts commit " + a + "ff.\n", nil},
		"upper case hash":   {"Revert\n\nThis reverts commit " + strings.ToUpper(a) + ".\n", nil},
	}
	for name, tc := range cases {
		if got := (&Revision{Message: tc.msg}).Reverts(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Reverts(%q) = %q, want %q", name, tc.msg, got, tc.want)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	same := []string{
		"https://GitHub.com/Acme/Deploy.git",
		"https://github.com/acme/deploy",
		"git@github.com:acme/deploy.git",
		"ssh://git@github.com:22/acme/deploy.git",
		"http://github.com:8080/acme/deploy/",
	}
	for _, u := range same {
		if got := NormalizeURL(u); got != "github.com/acme/deploy" {
			t.Errorf("NormalizeURL(%q) = %q", u, got)
		}
	}
	for _, u := range []string{"", "plain", "https://%zz"} {
		if got := NormalizeURL(u); got != "" {
			t.Errorf("NormalizeURL(%q) = %q, want empty", u, got)
		}
	}
}

func TestKindNames(t *testing.T) {
	for kind, name := range map[error]string{
		nil: "", ErrAuthFailed: "auth", ErrHostKeyMismatch: "host_key", ErrUnreachable: "unreachable",
		ErrBranchMissing: "branch_missing", ErrSignatureInvalid: "signature", ErrTimeout: "timeout",
		ErrLeaseLost: "lease_lost",
	} {
		var err error
		if kind != nil {
			err = &Error{Op: "fetch", Repository: "r", Kind: kind}
		}
		if got := KindName(err); got != name {
			t.Errorf("KindName(%v) = %q, want %q", err, got, name)
		}
	}
	if KindName(&Error{Op: "commit", Repository: "r"}) != "other" {
		t.Error("untyped error")
	}
}
