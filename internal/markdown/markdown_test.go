package markdown

import (
	"strings"
	"testing"
)

func TestCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"fix the api", "`fix the api`"},
		{"", "(none)"},
		{"  \n\t ", "(none)"},
		{"ping @admin now", "`ping @\u200badmin now`"},
		{"use `make` please", "``use `make` please``"},
		{"`leading", "`` `leading ``"},
		{"trailing``", "``` trailing`` ```"},
		{"two\nlines\r\nhere", "`two lines here`"},
		{"<img src=x onerror=alert(1)>", "`<img src=x onerror=alert(1)>`"},
		{"right\u202eto-left", "`rightto-left`"},
		{"bell\x07", "`bell`"},
	} {
		if got := Code(tc.in); got != tc.want {
			t.Errorf("Code(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("a", 300)
	if got := Code(long); len([]rune(got)) != DefaultMax+2 || !strings.HasSuffix(got, "…`") {
		t.Errorf("Code of 300 runes = %q (%d runes)", got, len([]rune(got)))
	}
}

func TestCellEscapesPipes(t *testing.T) {
	if got := Cell("a | b"); got != "`a \\| b`" {
		t.Errorf("Cell = %q", got)
	}
}

func TestHTML(t *testing.T) {
	if got := HTML("<b>Secret</b> & @ops"); got != "&lt;b&gt;Secret&lt;/b&gt; &amp; @\u200bops" {
		t.Errorf("HTML = %q", got)
	}
}

func TestBlockCannotBeClosedByItsBody(t *testing.T) {
	body := "@@ -1 +1 @@\n ```\n+ ````` \n- line @team\n"
	got := Block("diff", body)
	if !strings.HasPrefix(got, "``````diff\n") || !strings.HasSuffix(got, "\n``````\n") {
		t.Errorf("Block = %q: want a six-backtick fence", got)
	}
	if strings.Contains(got, "@team") || !strings.Contains(got, "\n@@ -1 +1 @@\n") {
		t.Errorf("Block = %q: want the mention broken, the hunk header kept", got)
	}
	if got := Block("", "no newline"); got != "```\nno newline\n```\n" {
		t.Errorf("Block = %q", got)
	}
}
