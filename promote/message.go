package promote

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/source"
)

// Trailers Baton writes on promotion and revert commits.
const (
	// TrailerPromotedFrom is "<env>@<commit>": what the commit carries.
	TrailerPromotedFrom = "Baton-Promoted-From"
	// TrailerSourceHealth is "healthy since <RFC3339>".
	TrailerSourceHealth = "Baton-Source-Health"
	// TrailerGates lists the gates and their verdicts.
	TrailerGates = "Baton-Gates"
	// TrailerContent is the content key of the promoted paths, by which a
	// reverted promotion is recognised in later source commits.
	TrailerContent = "Baton-Content"
	// TrailerRevertReason says why Baton reverted a promotion.
	TrailerRevertReason = "Baton-Revert-Reason"
	// TrailerGatesOverridden is "<by>: <reason>" on a promotion whose
	// soak and query gates a person skipped.
	TrailerGatesOverridden = "Baton-Gates-Overridden"
)

// promotionMessage is the promotion commit's message: a subject naming
// the edge and the short source commit, and the trailers.
func promotionMessage(e Edge, sourceCommit string, healthySince time.Time, gates []GateResult, key string, override *Override) string {
	var b strings.Builder
	fmt.Fprintf(&b, "promote %s@%s to %s\n\n", e.From, githash.Short(sourceCommit), e.To)
	fmt.Fprintf(&b, "%s: %s@%s\n", TrailerPromotedFrom, e.From, sourceCommit)
	fmt.Fprintf(&b, "%s: healthy since %s\n", TrailerSourceHealth, healthySince.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "%s: %s\n", TrailerGates, gatesTrailer(gates))
	if override != nil {
		fmt.Fprintf(&b, "%s: %s: %s\n", TrailerGatesOverridden, oneLine(override.By), oneLine(override.Reason))
	}
	fmt.Fprintf(&b, "%s: %s\n", TrailerContent, key)
	return b.String()
}

// gatesTrailer writes gate verdicts on one line: "soak passed (healthy for
// 2m0s (soak 2m0s)); error-ratio passed (0.01 < 0.05)".
func gatesTrailer(gates []GateResult) string {
	parts := make([]string, 0, len(gates))
	for _, g := range gates {
		verdict := "passed"
		if !g.Passed {
			verdict = "failed"
		}
		parts = append(parts, fmt.Sprintf("%s %s (%s)", g.Gate, verdict, oneLine(g.Detail)))
	}
	return strings.Join(parts, "; ")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// revertMessage is the message of a revert of commit c, in git's own form
// (so that people and tools recognise it) plus Baton's reason.
func revertMessage(c *source.Revision, reason string) string {
	return fmt.Sprintf("Revert \"%s\"\n\nThis reverts commit %s.\n\n%s: %s\n", c.Subject(), c.Commit, TrailerRevertReason, oneLine(reason))
}

// promotedFrom returns the environment and commit of a commit's
// Baton-Promoted-From trailer.
func promotedFrom(r *source.Revision) (env, commit string, ok bool) {
	v, ok := r.Trailer(TrailerPromotedFrom)
	if !ok {
		return "", "", false
	}
	env, commit, ok = strings.Cut(strings.TrimSpace(v), "@")
	if !ok || env == "" || !isHash(commit) {
		return "", "", false
	}
	return env, commit, true
}

// squashedPromotion reads the promotion a squash merge of a promotion pull
// request carries in its message, which then holds Baton's trailers not as
// the last paragraph but somewhere in the body: GitHub's default squash
// message lists the commits' messages ("* promote ...", the trailers
// below), a single-commit pull request's keeps the commit's message with
// "(#N)" on the subject and co-author lines after it, and the message
// Gitea's web page proposes is the pull request's title and description,
// which ends with Baton's marker (see promotionMarker). Only whole lines
// count, never the subject.
func squashedPromotion(message string) (env, commit, key string, ok bool) {
	if m := reMarker.FindStringSubmatch(message); m != nil {
		return m[1], m[2], m[3], true
	}
	_, body, _ := strings.Cut(strings.ReplaceAll(message, "\r\n", "\n"), "\n")
	for _, line := range strings.Split(body, "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.EqualFold(k, TrailerPromotedFrom):
			// The last one wins: commits are listed oldest first.
			if e, c, cut := strings.Cut(v, "@"); cut && e != "" && isHash(c) {
				env, commit, key, ok = e, c, "", true
			}
		case strings.EqualFold(k, TrailerContent) && ok:
			key = v
		}
	}
	return env, commit, key, ok
}

// promotionMarker is the line a promotion pull request's description ends
// with: it names the edge, the source commit and the content key, so that
// a squash merge that keeps the description (what Gitea's web page
// proposes) is still recognised as the promotion.
func promotionMarker(e Edge, sourceCommit, key string) string {
	return fmt.Sprintf("<!-- baton:promotion %s %s@%s %s -->", e.Name(), e.From, sourceCommit, key)
}

// reMarker matches promotionMarker; the key is optional (pull requests
// opened before it was written).
var reMarker = regexp.MustCompile(`<!-- baton:promotion \S+ ([^\s@]+)@([0-9a-f]{40})(?: (sha256:[0-9a-f]{64}))? -->`)

// reTitle matches a promotion pull request's title, as a squash merge's
// subject keeps it (GitHub and Gitea add " (#N)"): from, short source
// commit, to, pull request number. A named pipeline's title starts with
// its name in brackets.
var reTitle = regexp.MustCompile(`^(?:\[[a-z0-9-]+\] )?promote (\S+)@([0-9a-f]{7,40}) to (\S+?)(?: \(#(\d+)\))?$`)

func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
