package promote

import (
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/source"
)

// fakeHash makes a readable commit hash for history tables.
func fakeHash(name string) string {
	s := sha1.Sum([]byte(name))
	return hex.EncodeToString(s[:])
}

// chain builds a history from specs, newest first: "name: message" with
// parents given after "<" (first parent first), e.g. "m < t2 p1: Merge".
type spec struct {
	name    string
	parents []string
	message string
}

func history(specs ...spec) []*source.Revision {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*source.Revision, len(specs))
	for i, s := range specs {
		parents := make([]string, len(s.parents))
		for j, p := range s.parents {
			parents[j] = fakeHash(p)
		}
		when := base.Add(time.Duration(len(specs)-i) * time.Minute)
		out[i] = &source.Revision{Commit: fakeHash(s.name), Parents: parents, Message: s.message,
			Trailers: source.ParseTrailers(s.message), Time: when,
			Author:    source.Signature{Name: "author-" + s.name, When: when},
			Committer: source.Signature{Name: "committer-" + s.name, When: when}}
	}
	return out
}

func promo(from, commit, key string) string {
	return promotionMessage(Edge{From: from, To: "prod"}, commit, time.Unix(0, 0), nil, key, nil)
}

func TestAnalyzeTarget(t *testing.T) {
	c1, c2 := fakeHash("c1"), fakeHash("c2")
	tests := []struct {
		name      string
		log       []*source.Revision
		wantLast  string // source commit of the last promotion in effect
		wantHolds []string
		wantBy    []string // revert commit names, per hold
	}{
		{
			name: "direct promotion in effect",
			log: history(
				spec{"h", []string{"p1"}, "hotfix"},
				spec{"p1", []string{"t0"}, promo("staging", c1, "k1")},
				spec{"t0", nil, "start"},
			),
			wantLast: c1,
		},
		{
			name: "merged pull request",
			log: history(
				spec{"m", []string{"t0", "p1"}, "Merge pull request 'promote' (#1)"},
				spec{"p1", []string{"t0"}, promo("staging", c1, "k1")},
				spec{"t0", nil, "start"},
			),
			wantLast: c1,
		},
		{
			name: "revert of a merge holds, earlier promotion in effect",
			log: history(
				spec{"r", []string{"m"}, "Revert \"Merge\"\n\nThis reverts commit " + fakeHash("m") + ", reversing\nchanges made to x.\n"},
				spec{"m", []string{"p1", "p2"}, "Merge pull request (#2)"},
				spec{"p2", []string{"p1"}, promo("staging", c2, "k2")},
				spec{"p1", []string{"t0"}, promo("staging", c1, "k1")},
				spec{"t0", nil, "start"},
			),
			wantLast:  c1,
			wantHolds: []string{c2},
			wantBy:    []string{"r"},
		},
		{
			name: "revert of the promotion commit itself",
			log: history(
				spec{"x", []string{"r"}, "unrelated"},
				spec{"r", []string{"p2"}, "Revert \"promote\"\n\nThis reverts commit " + fakeHash("p2") + ".\n"},
				spec{"p2", []string{"t0"}, promo("staging", c2, "k2")},
				spec{"t0", nil, "start"},
			),
			wantHolds: []string{c2},
			wantBy:    []string{"r"},
		},
		{
			name: "revert merged through a pull request",
			log: history(
				spec{"rm", []string{"m", "r"}, "Merge pull request 'Revert' (#3)"},
				spec{"r", []string{"m"}, "Revert \"Merge\"\n\nThis reverts commit " + fakeHash("m") + ".\n"},
				spec{"m", []string{"t0", "p1"}, "Merge pull request 'promote' (#2)"},
				spec{"p1", []string{"t0"}, promo("staging", c1, "k1")},
				spec{"t0", nil, "start"},
			),
			wantHolds: []string{c1},
			wantBy:    []string{"r"},
		},
		{
			name: "revert of the revert lifts the hold",
			log: history(
				spec{"rr", []string{"r"}, "Revert \"Revert\"\n\nThis reverts commit " + fakeHash("r") + ".\n"},
				spec{"r", []string{"p2"}, "Revert \"promote\"\n\nThis reverts commit " + fakeHash("p2") + ".\n"},
				spec{"p2", []string{"t0"}, promo("staging", c2, "k2")},
				spec{"t0", nil, "start"},
			),
			wantLast: c2,
		},
		{
			// GitHub's default squash message for a single-commit pull
			// request: the commit's message, "(#N)" on the subject, and a
			// co-author line after the trailers.
			name: "squash merge keeping the commit message (GitHub, one commit)",
			log: history(
				spec{"s", []string{"t0"}, strings.Replace(promo("staging", c1, "k1"), " to prod\n", " to prod (#7)\n", 1) +
					"\nCo-authored-by: Baton <baton@example.invalid>\n"},
				spec{"t0", nil, "start"},
			),
			wantLast: c1,
		},
		{
			// GitHub's default for several commits: "* message" per commit,
			// oldest first; the newest promotion counts.
			name: "squash merge listing the commits (GitHub)",
			log: history(
				spec{"s", []string{"t0"}, "promote staging@" + c2[:7] + " to prod (#8)\n\n* " + promo("staging", c1, "k1") +
					"\n* " + promo("staging", c2, "k2")},
				spec{"t0", nil, "start"},
			),
			wantLast: c2,
		},
		{
			// Gitea's default: the pull request's title and description,
			// which ends with Baton's marker.
			name: "squash merge with the pull request description (Gitea), then reverted",
			log: history(
				spec{"r", []string{"s"}, "Revert \"promote\"\n\nThis reverts commit " + fakeHash("s") + ".\n"},
				spec{"s", []string{"t0"}, "promote staging@" + c1[:7] + " to prod (#9)\n\nPromotes **staging@" + c1[:7] +
					"**.\n\n" + promotionMarker(Edge{From: "staging", To: "prod"}, c1, "sha256:"+strings.Repeat("ab", 32)) + "\n"},
				spec{"t0", nil, "start"},
			),
			wantHolds: []string{c1},
			wantBy:    []string{"r"},
		},
		{
			name: "a trailer in a subject is not a promotion",
			log: history(
				spec{"s", []string{"t0"}, "Baton-Promoted-From: staging@" + c1},
				spec{"t0", nil, "start"},
			),
		},
		{
			name: "other edge's promotions ignored",
			log: history(
				spec{"q", []string{"t0"}, promo("dev", c2, "k2")},
				spec{"t0", nil, "start"},
			),
		},
		{
			name: "history cut short",
			log: history(
				spec{"h", []string{"gone"}, "hotfix"},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := analyzeTarget("staging", tt.log[0].Commit, tt.log, nil)
			last := ""
			if h.last != nil {
				last = h.last.sourceCommit
			}
			if last != tt.wantLast {
				t.Errorf("last promotion from %q, want %q", last, tt.wantLast)
			}
			if len(h.holds) != len(tt.wantHolds) {
				t.Fatalf("%d holds, want %d", len(h.holds), len(tt.wantHolds))
			}
			for i, hd := range h.holds {
				if hd.sourceCommit != tt.wantHolds[i] {
					t.Errorf("hold %d of %s, want %s", i, hd.sourceCommit, tt.wantHolds[i])
				}
				if hd.revert.Commit != fakeHash(tt.wantBy[i]) {
					t.Errorf("hold %d reverted by %s, want %s", i, hd.revert.Commit, tt.wantBy[i])
				}
				if hd.key == "" {
					t.Errorf("hold %d lost its content key", i)
				}
			}
		})
	}
}

func TestCommitsBetween(t *testing.T) {
	log := history(
		spec{"c4", []string{"c3"}, "four"},
		spec{"c3", []string{"c2", "side"}, "merge side"},
		spec{"side", []string{"c1"}, "side work"},
		spec{"c2", []string{"c1"}, "two"},
		spec{"c1", []string{"c0"}, "one"},
		spec{"c0", nil, "zero"},
	)
	names := func(rs []*source.Revision) string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Message)
		}
		return strings.Join(out, ",")
	}
	got, complete := commitsBetween(log, fakeHash("c1"), fakeHash("c4"))
	if names(got) != "four,merge side,side work,two" || !complete {
		t.Errorf("between c1 and c4: %q complete=%v", names(got), complete)
	}
	got, complete = commitsBetween(log, fakeHash("unknown"), fakeHash("c2"))
	if names(got) != "two,one,zero" || complete {
		t.Errorf("from an unknown commit: %q complete=%v", names(got), complete)
	}
	got, _ = commitsBetween(log, fakeHash("c4"), fakeHash("c4"))
	if len(got) != 0 {
		t.Errorf("from c4 to c4: %q", names(got))
	}
}

func TestMessages(t *testing.T) {
	c := fakeHash("c")
	gates := []GateResult{{Gate: GateSoak, Passed: true, Detail: "healthy for 2m0s (soak 2m0s)"},
		{Gate: "error-ratio", Passed: true, Detail: "0.01 < 0.05"}}
	since := time.Date(2026, 11, 27, 5, 0, 0, 0, time.FixedZone("x", 3600))
	msg := promotionMessage(Edge{From: "dev", To: "staging"}, c, since, gates, "sha256:k", nil)
	rev := &source.Revision{Message: msg, Trailers: source.ParseTrailers(msg)}
	if got := rev.Subject(); got != "promote dev@"+c[:7]+" to staging" {
		t.Errorf("subject %q", got)
	}
	env, commit, ok := promotedFrom(rev)
	if !ok || env != "dev" || commit != c {
		t.Errorf("promotedFrom = %q %q %v", env, commit, ok)
	}
	for key, want := range map[string]string{
		TrailerSourceHealth: "healthy since 2026-11-27T04:00:00Z",
		TrailerGates:        "soak passed (healthy for 2m0s (soak 2m0s)); error-ratio passed (0.01 < 0.05)",
		TrailerContent:      "sha256:k",
	} {
		if got, _ := rev.Trailer(key); got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if _, ok := rev.Trailer(TrailerGatesOverridden); ok {
		t.Error("a promotion without an override has the override trailer")
	}
	over := promotionMessage(Edge{From: "dev", To: "staging"}, c, since, gates, "sha256:k",
		&Override{By: "Ada <ada@example.invalid>", Reason: "hotfix for\nINC-1"})
	if got, _ := (&source.Revision{Trailers: source.ParseTrailers(over)}).Trailer(TrailerGatesOverridden); got !=
		"Ada <ada@example.invalid>: hotfix for INC-1" {
		t.Errorf("%s: %q", TrailerGatesOverridden, got)
	}
	target := &source.Revision{Commit: c, Message: msg}
	rm := revertMessage(target, "staging unhealthy:\nCrashLoopBackOff")
	if x, ok := reverts(rm); !ok || x != c {
		t.Errorf("reverts(%q) = %q %v", rm, x, ok)
	}
	if !strings.HasPrefix(rm, `Revert "promote dev@`) {
		t.Errorf("revert subject: %q", rm)
	}
	if _, ok := reverts("Revert x\n\nsays This reverts commit " + c); ok {
		t.Error("a mention inside a line was taken for a revert")
	}
	if _, _, ok := promotedFrom(&source.Revision{Trailers: []source.Trailer{{Key: TrailerPromotedFrom, Value: "dev@notahash"}}}); ok {
		t.Error("a malformed trailer was accepted")
	}
}
