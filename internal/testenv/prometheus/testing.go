package prometheus

import (
	"testing"
)

// StartT starts a server for a test and stops it when the test ends. When
// the test failed, the server's log is printed first.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("prometheus: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus log (%s):\n%s", s.Dir(), s.Log())
		}
		s.Stop()
	})
	return s
}
