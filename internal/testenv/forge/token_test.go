package forge

import "testing"

// TestTokenLine: Gitea prints its root warning on stdout too, before or
// after the token, as seen in a failed run.
func TestTokenLine(t *testing.T) {
	const token = "c053a1820a49530429fcb069bd8b1ccc9b85affa"
	warning := "2026/12/04 22:36:27 modules/setting/setting.go:190:loadRunModeFrom() [E] You are running Gitea using the root user"
	for _, out := range []string{token + "\n", token + "\n" + warning + "\n", warning + "\n" + token + "\n"} {
		if got := tokenLine(out); got != token {
			t.Errorf("tokenLine(%q) = %q", out, got)
		}
	}
	if got := tokenLine(warning + "\n"); got != "" {
		t.Errorf("no token: got %q", got)
	}
}
