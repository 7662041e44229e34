package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane; the forge is started by the test.
var env *testenv.Cluster

// binDir holds the baton binary built for the package.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "baton-e2e-"); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	code := testenv.Main(m, &env)
	_ = os.RemoveAll(binDir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
	buildOut  []byte
)

// batonBinary builds cmd/baton once per test binary: set-image runs as CI
// runs it. It is built the way this test binary was (with or without -race)
// so that the build reuses the packages go test has just compiled; on a
// fresh machine a build in the other mode compiles every dependency again.
func batonBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "baton")
	buildOnce.Do(func() {
		args := []string{"build", "-o", bin}
		if builtWithRace() {
			args = append(args, "-race")
		}
		args = append(args, "github.com/baton-gitops/baton/cmd/baton")
		buildOut, buildErr = exec.Command("go", args...).CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build cmd/baton: %v: %s", buildErr, buildOut)
	}
	return bin
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
