package preview

import (
	"fmt"
	"io"
	"strings"
)

// ANSI colours for a terminal.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
)

// WriteText writes the Report as the pull request comment says it, as
// text for a terminal (`baton diff`): the objects with their changes and
// highlights, then every diff, then the summary line. With no change and
// no refusal it is the summary line alone. color paints the diffs.
func (r Report) WriteText(w io.Writer, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	if r.Failure != "" {
		fmt.Fprintf(&b, "%s\n", r.Summary())
		_, err := io.WriteString(w, b.String())
		return err
	}
	if len(r.Objects) > 0 {
		width := 0
		for _, o := range r.Objects {
			width = max(width, len(o.Ref))
		}
		for _, o := range r.Objects {
			notes := append([]string{}, o.Highlights...)
			if o.Message != "" {
				notes = append(notes, o.Message)
			}
			row := fmt.Sprintf("%-10s  %-*s  %s", o.Action, width, o.Ref, strings.Join(notes, "; "))
			b.WriteString(strings.TrimRight(row, " ") + "\n")
		}
		b.WriteString("\n")
	}
	for _, o := range r.Objects {
		if o.Diff == "" {
			continue
		}
		header := fmt.Sprintf("# %s %s", o.Ref, o.Action)
		b.WriteString(paint(ansiBold, header) + "\n")
		for _, line := range strings.SplitAfter(o.Diff, "\n") {
			if line == "" {
				continue
			}
			text := strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "+++") || strings.HasPrefix(line, "---"):
				text = paint(ansiBold, text)
			case strings.HasPrefix(line, "+"):
				text = paint(ansiGreen, text)
			case strings.HasPrefix(line, "-"):
				text = paint(ansiRed, text)
			case strings.HasPrefix(line, "@@"):
				text = paint(ansiCyan, text)
			}
			b.WriteString(text + "\n")
		}
	}
	b.WriteString(r.Summary() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}
