// Package batonbin builds the baton binary for tests that run it as a
// separate process (the end-to-end and fault-injection suites).
package batonbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
)

// Builder builds cmd/baton once per test binary, the way the test binary
// itself was built (with or without -race), so that the build reuses the
// packages go test has just compiled: on a fresh machine a build in the
// other mode compiles every dependency again. The zero value is ready.
type Builder struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// Path builds the binary on first use and returns its path; a failed build
// fails the test with the compiler's output.
func (b *Builder) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "baton-bin-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "baton")
		args := []string{"build", "-o", b.bin}
		if builtWithRace() {
			args = append(args, "-race")
		}
		args = append(args, "github.com/baton-gitops/baton/cmd/baton")
		b.out, b.err = exec.Command("go", args...).CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build cmd/baton: %v: %s", b.err, b.out)
	}
	return b.bin
}

// Remove deletes the binary; call it from TestMain after the tests.
func (b *Builder) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// builtWithRace reports whether this test binary has the race detector, as
// its build information records.
func builtWithRace() bool {
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
