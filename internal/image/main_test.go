package image_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/image"
)

// work holds the package's clones and builds, removed when the tests end.
var work string

func TestMain(m *testing.M) {
	var err error
	if work, err = os.MkdirTemp("", "baton-image-test-"); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(work)
	os.Exit(code)
}

// repoRoot is the git work tree holding this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cloneHead clones the committed HEAD of the work tree into a new folder
// under work, named name: the image is built from a commit, so the tests
// build from clean clones of one (uncommitted edits of cmd/baton are not in
// it), at paths that differ in name and length.
func cloneHead(t testing.TB, name string) string {
	t.Helper()
	root := repoRoot(t)
	head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(work, name)
	for _, args := range [][]string{
		{"clone", "--quiet", "--no-checkout", root, dst},
		{"-C", dst, "checkout", "--quiet", "--detach", strings.TrimSpace(string(head))},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return dst
}

var (
	buildOnce sync.Once
	built     *image.Result
	builtSrc  image.Source
	buildErr  error

	toolOnce sync.Once
	tool     string
	toolErr  error
)

// build builds the image once per test binary, from a clone of HEAD, with
// both platforms compiled for real (CGO off, no race detector: the image's
// own settings); the tests share it.
func build(t testing.TB) (*image.Result, image.Source) {
	t.Helper()
	buildOnce.Do(func() {
		dir := cloneHead(t, "first")
		built, builtSrc, buildErr = buildFrom(t, dir, filepath.Join(work, "out-first"))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built, builtSrc
}

// buildFrom runs the image command's build, as make image runs it but
// with the go on PATH, and reads back what it wrote. The command runs as
// its own process, built without the race detector: compressing two 40 MB
// binaries inside a -race test binary takes minutes.
func buildFrom(t testing.TB, dir, out string) (*image.Result, image.Source, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	src, err := image.ReadSource(ctx, dir)
	if err != nil {
		return nil, src, err
	}
	toolOnce.Do(func() {
		tool = filepath.Join(work, "image")
		var b []byte
		b, toolErr = exec.CommandContext(ctx, "go", "build", "-o", tool, "github.com/baton-gitops/baton/internal/image/cmd/image").CombinedOutput()
		if toolErr != nil {
			toolErr = fmt.Errorf("go build the image command: %w: %s", toolErr, b)
		}
	})
	if toolErr != nil {
		return nil, src, toolErr
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, tool, "build", "-dir", dir, "-out", out)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	if err := cmd.Run(); err != nil {
		return nil, src, fmt.Errorf("image build in %s: %w", dir, err)
	}
	t.Logf("build from %s: %s", dir, time.Since(start).Round(time.Second))
	res, err := image.ReadResult(out)
	return res, src, err
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
