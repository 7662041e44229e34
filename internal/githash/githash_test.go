package githash

import "testing"

func TestShort(t *testing.T) {
	full := "0123456789abcdef0123456789abcdef01234567"
	for in, want := range map[string]string{
		full:             "0123456789ab",
		full[:12]:        "0123456789ab",
		"abc1234":        "abc1234",
		"":               "",
		full + full[:24]: "0123456789ab", // a SHA-256 hash
	} {
		if got := Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}
