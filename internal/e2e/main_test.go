package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// runs it.
func batonBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(binDir, "baton")
	buildOnce.Do(func() {
		buildOut, buildErr = exec.Command("go", "build", "-o", bin, "github.com/baton-gitops/baton/cmd/baton").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build cmd/baton: %v: %s", buildErr, buildOut)
	}
	return bin
}
