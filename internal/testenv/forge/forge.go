// Package forge runs a real Gitea for tests: a forge with a pull-request
// API, webhooks and git over HTTP, on 127.0.0.1 with a free port and SQLite.
// Promotion tests open, update, comment on and merge pull requests through
// it instead of a mock.
//
// Gitea is built once per machine into the tool cache (see EnsureBinaries);
// an instance starts in 2-3 seconds and uses about 200 MB, so one per test
// package (Main) or per test (StartT) is affordable. Stop stops only the
// process Start started, and keeps the instance's folder and log when a test
// failed.
package forge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options tune a forge. The zero value is what tests want.
type Options struct {
	// User is the admin user created at start; empty means "baton".
	User string
	// Progress receives the build's progress line on first use. Nil means
	// os.Stderr.
	Progress io.Writer
	// StartTimeout bounds the wait for the API after the process started;
	// zero means 60 seconds (a loaded 2-core machine is slow).
	StartTimeout time.Duration
}

// Forge is a running Gitea.
type Forge struct {
	dir      string // work path, configuration and log
	bin      string
	ini      string
	port     int
	user     string
	password string
	token    string
	client   *http.Client

	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
	repos atomic.Int64  // numbers given by RepoName

	mu      sync.Mutex // guards keep and stopped
	keep    bool       // keep dir after Stop (a test failed)
	stopped bool
}

// adminPassword is the admin user's password: the instance is throwaway and
// listens on loopback only.
const adminPassword = "baton-test-password"

// Start builds Gitea (once per machine), writes a configuration, starts it
// and waits until its API answers, then creates an admin user and an access
// token with every scope. On error everything started is stopped again.
func Start(ctx context.Context, opts Options) (f *Forge, err error) {
	if opts.User == "" {
		opts.User = "baton"
	}
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	cacheDir, err := ensureBinary(ctx, opts.Progress)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "baton-gitea-")
	if err != nil {
		return nil, fmt.Errorf("forge: %w", err)
	}
	f = &Forge{
		dir:      dir,
		bin:      filepath.Join(cacheDir, "gitea"),
		ini:      filepath.Join(dir, "custom", "conf", "app.ini"),
		user:     opts.User,
		password: adminPassword,
		client:   &http.Client{Timeout: 30 * time.Second},
	}
	defer func() {
		if err != nil {
			f.keep = true
			f.Stop()
			err = fmt.Errorf("%w (log kept in %s)", err, f.LogPath())
		}
	}()
	// A free port can be taken between our probe and Gitea's bind; try a
	// few before giving up.
	for attempt := 1; ; attempt++ {
		if f.port, err = freePort(); err != nil {
			return f, fmt.Errorf("forge: %w", err)
		}
		if err = writeAppINI(f.ini, settings{workDir: dir, staticDir: cacheDir, port: f.port}); err != nil {
			return f, fmt.Errorf("forge: %w", err)
		}
		if err = f.startProcess(); err != nil {
			return f, err
		}
		err = f.waitReady(ctx, opts.StartTimeout)
		if err == nil {
			break
		}
		if !f.exited() || attempt == 3 || !strings.Contains(f.logTail(4096), "address already in use") {
			return f, err
		}
	}
	if err := f.createAdmin(ctx); err != nil {
		return f, err
	}
	return f, nil
}

// startProcess launches `gitea web` in its own process group, logging to
// the instance's folder.
func (f *Forge) startProcess() error {
	logFile, err := os.OpenFile(f.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("forge: %w", err)
	}
	cmd := exec.Command(f.bin, "--config", f.ini, "--work-path", f.dir, "web")
	cmd.Env = f.env()
	cmd.Dir = f.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own group so Stop can end the git processes Gitea spawns too; and
	// killed with the test binary should that die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("forge: start gitea: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	f.cmd, f.done = cmd, done
	return nil
}

// env is the environment of every gitea command: tests run as root in
// containers, which Gitea refuses without the override, and HOME keeps
// the git configuration Gitea writes away from the user's.
func (f *Forge) env() []string {
	return append(os.Environ(),
		"GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true",
		"GITEA_WORK_DIR="+f.dir,
		"GITEA_CUSTOM="+filepath.Join(f.dir, "custom"),
		"HOME="+f.dir,
	)
}

func (f *Forge) exited() bool {
	if f.done == nil {
		return true
	}
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// waitReady polls the version endpoint until it answers, the process
// exits, or the timeout passes.
func (f *Forge) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL()+"api/v1/version", nil)
		resp, err := f.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /api/v1/version: %s", resp.Status)
		}
		last = err
		select {
		case <-f.done:
			return fmt.Errorf("forge: gitea exited during start-up: %s", lastLine(f.logTail(2048)))
		case <-ctx.Done():
			return fmt.Errorf("forge: gitea API not ready after %s: %v", timeout, last)
		case <-tick.C:
		}
	}
}

// createAdmin makes the admin user and an access token through the CLI,
// which talks to the same SQLite database.
func (f *Forge) createAdmin(ctx context.Context) error {
	if _, err := f.cli(ctx, "admin", "user", "create", "--admin", "--username", f.user,
		"--password", f.password, "--email", f.user+"@example.invalid", "--must-change-password=false"); err != nil {
		return err
	}
	out, err := f.cli(ctx, "admin", "user", "generate-access-token", "--username", f.user,
		"--token-name", "baton-tests", "--scopes", "all", "--raw")
	if err != nil {
		return err
	}
	// The token is a line of hex on stdout, where Gitea's own log lines
	// (the root warning) may come before or after it.
	f.token = tokenLine(out)
	if f.token == "" {
		return fmt.Errorf("forge: unexpected token output: %q", out)
	}
	return nil
}

// cli runs a gitea command against this instance's configuration.
func (f *Forge) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.bin, append([]string{"--config", f.ini, "--work-path", f.dir}, args...)...)
	cmd.Env = f.env()
	cmd.Dir = f.dir
	// Gitea logs warnings (running as root, ...) to stderr, in any order
	// with what the command prints: keep them apart.
	var out, logs bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &logs
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("forge: gitea %s: %w: %s", strings.Join(args[:min(3, len(args))], " "), err,
			lastLine(out.String()+logs.String()))
	}
	return out.String(), nil
}

// Stop stops the Gitea process and the processes it started, then removes
// the instance's folder unless KeepLogs was called. Safe to call twice.
func (f *Forge) Stop() {
	f.mu.Lock()
	if f.stopped {
		f.mu.Unlock()
		return
	}
	f.stopped = true
	keep := f.keep
	f.mu.Unlock()
	if f.cmd != nil && !f.exited() {
		// Negative pid: the whole group we created, and nothing else.
		_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
			<-f.done
		}
	}
	f.client.CloseIdleConnections()
	if !keep {
		_ = os.RemoveAll(f.dir)
	}
}

// KeepLogs marks the instance's folder (configuration, data, log) to be
// kept after Stop, for a failed test to be inspected.
func (f *Forge) KeepLogs() {
	f.mu.Lock()
	f.keep = true
	f.mu.Unlock()
}

// URL is the forge's root URL, with a trailing slash
// (http://127.0.0.1:PORT/).
func (f *Forge) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/", f.port) }

// APIURL is the REST API's root, http://127.0.0.1:PORT/api/v1.
func (f *Forge) APIURL() string { return f.URL() + "api/v1" }

// User is the admin user's name; it owns the repositories CreateRepo makes.
func (f *Forge) User() string { return f.user }

// Password is the admin user's password (for basic auth in tests).
func (f *Forge) Password() string { return f.password }

// Token is an access token of the admin user with every scope.
func (f *Forge) Token() string { return f.token }

// Dir is the instance's folder.
func (f *Forge) Dir() string { return f.dir }

// LogPath is the Gitea process's log file.
func (f *Forge) LogPath() string { return filepath.Join(f.dir, "gitea.log") }

func (f *Forge) logTail(n int) string {
	b, err := os.ReadFile(f.LogPath())
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// tokenLine returns the line of s that is an access token: 40 or more
// hex digits and nothing else, or "".
func tokenLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if len(line) >= 40 && strings.Trim(line, "0123456789abcdef") == "" {
			return line
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\r\n\t "), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
