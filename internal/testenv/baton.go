package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
)

var (
	batonOnce sync.Once
	batonPath string
	batonErr  error
	batonOut  []byte
)

// BatonBinary builds cmd/baton once per test binary, into a temporary
// folder that Main (or RemoveBatonBinary) removes at the end, and returns
// its path:
// tests that run the agent or the CLI as a user does run this. It is built
// the way the test binary was (with or without -race) so that the build
// reuses the packages go test has just compiled; on a fresh machine a build
// in the other mode compiles every dependency again.
func BatonBinary(t testing.TB) string {
	t.Helper()
	batonOnce.Do(func() {
		dir, err := os.MkdirTemp("", "baton-bin-")
		if err != nil {
			batonErr = err
			return
		}
		batonPath = filepath.Join(dir, "baton")
		args := []string{"build", "-o", batonPath}
		if BuiltWithRace() {
			args = append(args, "-race")
		}
		args = append(args, "github.com/baton-gitops/baton/cmd/baton")
		batonOut, batonErr = exec.Command("go", args...).CombinedOutput()
	})
	if batonErr != nil {
		t.Fatalf("go build cmd/baton: %v: %s", batonErr, batonOut)
	}
	return batonPath
}

// RemoveBatonBinary removes what BatonBinary built; Main calls it, a
// TestMain of its own must.
func RemoveBatonBinary() {
	if batonPath != "" {
		_ = os.RemoveAll(filepath.Dir(batonPath))
	}
}

// BuiltWithRace reports whether this test binary has the race detector, as
// its build information records.
func BuiltWithRace() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
