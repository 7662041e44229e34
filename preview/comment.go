package preview

import (
	"fmt"
	"strings"

	"github.com/baton-gitops/baton/internal/markdown"
)

// Marker returns the hidden line that identifies an environment's preview
// comment, so that it is found and updated in place.
func Marker(env string) string { return "<!-- baton:preview " + env + " -->" }

// DefaultMaxCommentBytes bounds a comment: under GitHub's 65536
// characters, with room to spare.
const DefaultMaxCommentBytes = 60000

// maxRows bounds the summary table; more objects are counted, not listed.
const maxRows = 200

// Comment writes the Report as a pull request comment in Markdown: the
// marker, a heading with the summary, a table of the objects (with their
// highlights), then each object's diff, collapsed. Diffs that would take
// the comment past maxBytes are left out with a note (the table still
// lists every object up to maxRows). Everything from git or the cluster
// is quoted with internal/markdown, so that nothing in it mentions,
// links, formats or runs. maxBytes <= 0 means DefaultMaxCommentBytes.
func (r Report) Comment(maxBytes int) string {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxCommentBytes
	}
	var b strings.Builder
	b.WriteString(Marker(r.Environment) + "\n")
	verdict := "✅ would sync"
	if !r.Passed() {
		verdict = "❌ would fail"
	}
	fmt.Fprintf(&b, "### Baton preview: `%s` %s\n\n", r.Environment, verdict)
	fmt.Fprintf(&b, "Merging this pull request, at %s, would do this to the live **%s** environment: a server-side dry run of %s, exactly as a sync would apply it (same scope, same ignore rules).\n\n",
		markdown.Code(short(r.Revision)), r.Environment, markdown.Code(r.Path))
	if r.Failure != "" {
		fmt.Fprintf(&b, "**No object was compared:** %s\n\n", markdown.Code(r.Failure))
	}
	fmt.Fprintf(&b, "**%s**\n\n", markdown.HTML(r.Summary()))
	if len(r.Objects) > 0 {
		b.WriteString("| Change | Object | Notes |\n|---|---|---|\n")
		for i, o := range r.Objects {
			if i == maxRows {
				fmt.Fprintf(&b, "| … | %d more objects | |\n", len(r.Objects)-i)
				break
			}
			notes := make([]string, 0, len(o.Highlights)+1)
			for _, h := range o.Highlights {
				notes = append(notes, markdown.Cell(h))
			}
			if o.Message != "" {
				notes = append(notes, markdown.Cell(o.Message))
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", o.Action, markdown.Cell(o.Ref), strings.Join(notes, "<br>"))
		}
		b.WriteString("\n")
	}
	if r.Counts[Failed] > 0 {
		b.WriteString("A sync applies nothing more and prunes nothing once an object is refused, so objects it would prune are not listed.\n\n")
	}
	footer := fmt.Sprintf("<sub>Secret values are masked. The same preview as text: `baton diff --env %s --revision %s`. Baton updates this comment when the pull request, its base or the live environment changes.</sub>\n",
		r.Environment, commandArg(r.Ref, r.Revision))

	// Diffs, in order, while they fit.
	left := 0
	for _, o := range r.Objects {
		if o.Diff == "" {
			continue
		}
		block := diffBlock(o, maxBytes/4)
		if b.Len()+len(block)+len(footer)+200 > maxBytes {
			left++
			continue
		}
		b.WriteString(block)
	}
	if left > 0 {
		fmt.Fprintf(&b, "_The diffs of %d more objects are not shown: the comment would pass %d bytes._\n\n", left, maxBytes)
	}
	b.WriteString(footer)
	return b.String()
}

// diffBlock is one object's diff in a collapsed section, the diff itself
// cut to about limit bytes.
func diffBlock(o Object, limit int) string {
	diff := o.Diff
	if len(diff) > limit {
		cut := strings.LastIndexByte(diff[:limit], '\n') + 1
		diff = diff[:cut] + fmt.Sprintf("… (%d more lines)\n", strings.Count(diff[cut:], "\n"))
	}
	return fmt.Sprintf("<details><summary>%s %s</summary>\n\n%s\n</details>\n\n",
		o.Action, markdown.HTML(o.Ref), markdown.Block("diff", diff))
}

// commandArg names the revision for the CLI: the branch when there is one
// (a pull request's), else the commit.
func commandArg(ref, revision string) string {
	if ref != "" && !strings.ContainsAny(ref, " `'\"$\\;|&<>") {
		return ref
	}
	return short(revision)
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
