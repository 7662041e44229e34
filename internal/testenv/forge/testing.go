package forge

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"
)

// Main starts a forge for a test package, stores it in *f, runs the tests
// and stops the forge. When a test fails, the forge's folder and log are
// kept and printed. Use it from TestMain:
//
//	var gitea *forge.Forge
//	func TestMain(m *testing.M) { os.Exit(forge.Main(m, &gitea)) }
func Main(m *testing.M, f **Forge) int {
	if !flag.Parsed() {
		flag.Parse() // testing.Verbose needs the flags
	}
	// Generous: on a fresh machine this includes building Gitea.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	start := time.Now()
	g, err := Start(ctx, Options{})
	if err != nil {
		fmt.Printf("forge: start gitea: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("forge: gitea ready at %s in %s (folder %s)\n", g.URL(), time.Since(start).Round(time.Millisecond), g.Dir())
	}
	*f = g
	code := m.Run()
	if code != 0 {
		g.KeepLogs()
		fmt.Printf("forge: gitea log kept in %s\n", g.LogPath())
	}
	g.Stop()
	return code
}

// StartT starts a forge for one test and stops it at the test's cleanup,
// keeping its log when the test failed.
func StartT(t testing.TB) *Forge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	g, err := Start(ctx, Options{})
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			g.KeepLogs()
			t.Logf("forge: gitea log kept in %s", g.LogPath())
		}
		g.Stop()
	})
	return g
}
