// Package markdown puts untrusted text (commit subjects, author names, file
// paths, object names, error messages) into the Markdown that Baton posts on
// forges, so that it shows as the text it is and nothing more: no @mention
// that notifies someone, no issue reference, no link, no image, no HTML, no
// formatting that hides the rest of the comment.
//
// The text goes into code spans and code blocks, where GitHub, GitLab and
// Gitea interpret neither Markdown nor HTML nor references; an @ is also
// followed by a zero-width space, for the forges' notification parsers that
// look for mentions in the raw text.
package markdown

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// zeroWidthSpace breaks "@name" so that no parser sees a mention.
const zeroWidthSpace = "\u200b"

// DefaultMax is the rune limit Code applies to one piece of text.
const DefaultMax = 200

// Code returns s as an inline code span on one line: whitespace runs
// (newlines included) become one space, control and format characters
// (bidirectional overrides among them) are dropped, mentions are broken, and
// text past DefaultMax runes is cut with "…". An empty s gives "(none)".
func Code(s string) string { return CodeMax(s, DefaultMax) }

// CodeMax is Code with a rune limit of its own.
func CodeMax(s string, max int) string {
	s = clean(s, max)
	if s == "" {
		return "(none)"
	}
	// A delimiter longer than any backtick run inside cannot be closed
	// early; a space on both sides keeps a leading or trailing backtick
	// from joining the delimiter (CommonMark strips one space each side).
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// Cell is Code for a GitHub-flavoured table cell: a pipe ends a cell even
// inside a code span unless escaped with a backslash, which the table
// parser removes before the span is read.
func Cell(s string) string {
	return strings.ReplaceAll(Code(s), "|", `\|`)
}

// HTML returns s as text for an HTML element such as <summary>, where
// Markdown is not read: escaped, on one line, mentions broken, cut at
// DefaultMax runes.
func HTML(s string) string {
	return html.EscapeString(clean(s, DefaultMax))
}

// Fence returns the backtick fence for a code block holding body: one
// longer than any backtick run in it (at least three), so that no line of
// the body can close the block.
func Fence(body string) string {
	return strings.Repeat("`", max(3, longestRun(body, '`')+1))
}

// Block returns body as a fenced code block with the given info string
// ("diff", "yaml", or ""). Mentions inside are broken too: some forges
// scan the raw text for them.
func Block(info, body string) string {
	body = breakMentions(dropControls(body, true))
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	f := Fence(body)
	return f + info + "\n" + body + f + "\n"
}

// clean makes s one line of printable text with mentions broken, cut at
// max runes.
func clean(s string, max int) string {
	s = strings.Join(strings.Fields(dropControls(s, false)), " ")
	if max > 0 && utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return breakMentions(s)
}

// dropControls removes control and format characters; keepNewlines keeps
// "\n" and "\t" (for code blocks).
func dropControls(s string, keepNewlines bool) string {
	return strings.Map(func(r rune) rune {
		switch {
		case keepNewlines && (r == '\n' || r == '\t'):
			return r
		case r == '\n' || r == '\t' || r == '\r':
			return ' ' // whitespace: Fields folds it
		case unicode.Is(unicode.Cc, r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			return -1
		}
		return r
	}, s)
}

// breakMentions puts a zero-width space after every @ that a name could
// follow (a letter, digit, "_" or "-": the forges' mention and team
// syntax), leaving others ("@@ -1,6 +1,6 @@" of a diff) as they are.
func breakMentions(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		if s[i] == '@' && i+1 < len(s) && isNameByte(s[i+1]) {
			b.WriteString(zeroWidthSpace)
		}
	}
	return b.String()
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}
