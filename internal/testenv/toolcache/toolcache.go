// Package toolcache builds the programs the test environment runs (the
// Kubernetes control plane, kwok, Gitea, Prometheus) once per machine, from
// the Go module proxy, into a cache folder outside any clone. Every clone and
// CI run on the machine reuses them; a version change gets a new folder.
package toolcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// EnvCacheDir overrides where the cache lives.
const EnvCacheDir = "BATON_CACHE_DIR"

// Dir returns the cache root: $BATON_CACHE_DIR, or "baton" in the user cache
// directory (~/.cache/baton on Linux).
func Dir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find user cache dir (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(base, "baton"), nil
}

// Tool is a set of programs built together from one module version.
type Tool struct {
	// Name and Version key the cache folder: bin/<Name>-<Version>.
	Name    string
	Version string
	// Programs are the binaries the build leaves in the folder; each is
	// built by its own Build step so progress is reported per program.
	Programs []Program
	// Setup runs once before the programs are built, in the output folder
	// (e.g. to copy data files a program needs at run time). Optional.
	Setup func(ctx context.Context, dir string) error
}

// Program is one binary of a Tool.
type Program struct {
	Name string
	// Build writes the binary Name into dir.
	Build func(ctx context.Context, dir string) error
}

// Ensure returns the folder holding t's programs, building what is missing.
// It prints one line per program built, with the elapsed time, to progress.
// Concurrent callers (test packages run in parallel) wait on a file lock
// rather than building twice.
func Ensure(ctx context.Context, t Tool, progress io.Writer) (string, error) {
	root, err := Dir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "bin", t.Name+"-"+t.Version)
	if complete(dir, t) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Join(root, "locks"), 0o755); err != nil {
		return "", fmt.Errorf("toolcache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(root, "locks", t.Name+"-"+t.Version+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if complete(dir, t) { // built by another process while we waited
		return dir, nil
	}
	// Build into a scratch folder and rename, so an interrupted build never
	// leaves a folder that looks complete.
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("toolcache: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("toolcache: %w", err)
	}
	// Reuse programs from an earlier, interrupted attempt of the same version.
	for _, p := range t.Programs {
		if _, err := os.Stat(filepath.Join(dir, p.Name)); err == nil {
			_ = os.Rename(filepath.Join(dir, p.Name), filepath.Join(tmp, p.Name))
		}
	}
	if t.Setup != nil {
		if err := t.Setup(ctx, tmp); err != nil {
			return "", fmt.Errorf("set up %s %s: %w", t.Name, t.Version, err)
		}
	}
	for _, p := range t.Programs {
		if _, err := os.Stat(filepath.Join(tmp, p.Name)); err == nil {
			continue
		}
		start := time.Now()
		fmt.Fprintf(progress, "testenv: building %s %s (first time only; cached in %s)\n", p.Name, t.Version, root)
		if err := p.Build(ctx, tmp); err != nil {
			return "", fmt.Errorf("build %s %s: %w", p.Name, t.Version, err)
		}
		fmt.Fprintf(progress, "testenv: built %s %s in %s\n", p.Name, t.Version, time.Since(start).Round(time.Second))
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("toolcache: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("toolcache: %w", err)
	}
	return dir, nil
}

func complete(dir string, t Tool) bool {
	for _, p := range t.Programs {
		if _, err := os.Stat(filepath.Join(dir, p.Name)); err != nil {
			return false
		}
	}
	return true
}

// lock takes an exclusive flock on path, giving up when ctx ends.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("toolcache lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("toolcache lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("toolcache lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond): // another process is building
		}
	}
}

// GoBuild builds a package of the nested build module in build/<module> into
// the file out; args are further `go build` arguments ending in the package.
// The nested modules keep k8s.io/kubernetes, etcd and Gitea out of the main
// module's dependency graph.
func GoBuild(ctx context.Context, module, out string, args ...string) error {
	modDir, err := buildModuleDir(module)
	if err != nil {
		return err
	}
	cmdArgs := append([]string{"build", "-o", out}, args...)
	return goCmd(ctx, modDir, nil, cmdArgs...)
}

// GoInstall runs `go install pkg@version` with GOBIN=dir, for modules that
// need no replace directives.
func GoInstall(ctx context.Context, dir string, args ...string) error {
	tmp, err := os.MkdirTemp("", "baton-goinstall-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return goCmd(ctx, tmp, []string{"GOBIN=" + dir}, append([]string{"install"}, args...)...)
}

// ModuleDir returns the source folder of a module in the nested build module,
// downloading it if needed (for data files shipped in a module).
func ModuleDir(ctx context.Context, module, path string) (string, error) {
	modDir, err := buildModuleDir(module)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", path)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go list -m %s: %w", path, err)
	}
	if d := strings.TrimSpace(out.String()); d != "" {
		return d, nil
	}
	// Not downloaded yet: download and ask again.
	dl := exec.CommandContext(ctx, "go", "mod", "download", path)
	dl.Dir = modDir
	dl.Env = append(os.Environ(), "GOWORK=off")
	if b, err := dl.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod download %s: %w\n%s", path, err, b)
	}
	return ModuleDir(ctx, module, path)
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	// GOFLAGS from the caller (e.g. -race from `go test`) must not leak into
	// the tool builds; GOWORK off keeps a stray go.work from changing them.
	// The programs are linked without debug information (-s -w), so the
	// compiler need not write any either: that is about an eighth of the
	// compile time of the first build. C code (Gitea's SQLite) likewise.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false -gcflags=all=-dwarf=false", "CGO_CFLAGS=-O2")
	cmd.Env = append(cmd.Env, env...)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}

// buildModuleDir finds internal/testenv/build/<module> in the source tree.
// The tests and `make demo` always run from a checkout, so the tree is there.
func buildModuleDir(module string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("toolcache: cannot locate source tree")
	}
	d := filepath.Join(filepath.Dir(file), "..", "build", module)
	if _, err := os.Stat(filepath.Join(d, "go.mod")); err != nil {
		return "", fmt.Errorf("toolcache: build module %s: %w", module, err)
	}
	return d, nil
}

// EnsureFunc builds some tools into the cache, printing progress lines.
type EnsureFunc func(ctx context.Context, progress io.Writer) error

// EnsureInLanes runs the functions of each lane in order and the lanes side
// by side. Tools that share no packages build faster side by side on a
// fresh machine: each build leaves a core idle while it links or downloads
// modules. The first error cancels the other lanes.
func EnsureInLanes(ctx context.Context, progress io.Writer, lanes ...[]EnsureFunc) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, lane := range lanes {
		g.Go(func() error {
			for _, ensure := range lane {
				if err := ensure(ctx, progress); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}
