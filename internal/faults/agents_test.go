package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/agent"
)

// replica is one agent process, started from the baton binary as a pod's
// container would be. Killing it and starting it again keeps its identity
// and its cache folder, as a container restart in the same pod does.
type replica struct {
	t        testing.TB
	name     string
	bin      string
	config   string // baton.yaml path
	kube     string // kubeconfig path
	addr     string // listen address
	cacheDir string
	logPath  string

	cmd  *exec.Cmd
	done chan struct{}
	// incarnation counts starts: memory and goroutines are compared
	// within one process only.
	incarnation int
	paused      bool
}

// freeAddr picks a free loopback address for a replica's HTTP server.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newReplica(t testing.TB, name, bin, kube, dir, configText string) *replica {
	t.Helper()
	r := &replica{t: t, name: name, bin: bin, kube: kube, addr: freeAddr(t),
		cacheDir: filepath.Join(dir, name, "cache"), logPath: filepath.Join(dir, name, "agent.log")}
	if err := os.MkdirAll(r.cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	text := configText + fmt.Sprintf("listen: {http: %q}\n", r.addr)
	text = strings.Replace(text, "agent:\n", fmt.Sprintf("agent:\n  cacheDir: %s\n", r.cacheDir), 1)
	r.config = filepath.Join(dir, name, "baton.yaml")
	if err := os.WriteFile(r.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.kill() })
	return r
}

// start runs the agent process.
func (r *replica) start() {
	r.t.Helper()
	log, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	r.incarnation++
	fmt.Fprintf(log, "=== start %d at %s\n", r.incarnation, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.bin, "agent", "--config", r.config, "--kubeconfig", r.kube, "--identity", r.name,
		"--log-format", "json", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=1")
	// A test run killed (a CI timeout, Ctrl-C) leaves no agent behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start %s: %v", r.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	r.cmd, r.done, r.paused = cmd, done, false
}

func (r *replica) running() bool {
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (a crash, an OOM kill, a node lost) and waits.
func (r *replica) kill() {
	if !r.running() {
		return
	}
	if r.paused {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// stop sends SIGTERM and waits for a clean exit.
func (r *replica) stop() error {
	if !r.running() {
		return nil
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		if code := r.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited with %d after SIGTERM", r.name, code)
		}
		return nil
	case <-time.After(30 * time.Second):
		r.kill()
		return fmt.Errorf("%s did not stop within 30s of SIGTERM", r.name)
	}
}

// pause and resume stop and continue the process (SIGSTOP, SIGCONT): it
// cannot renew the Lease meanwhile, as in a long GC pause or a frozen node.
func (r *replica) pause() {
	if r.running() {
		_ = r.cmd.Process.Signal(syscall.SIGSTOP)
		r.paused = true
	}
}

func (r *replica) resume() {
	if r.running() && r.paused {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		r.paused = false
	}
}

// exitedBadly reports a replica that exited on its own (a panic, a race
// report with halt_on_error), with its log's tail.
func (r *replica) exitedBadly() (bool, string) {
	if r.cmd == nil || r.running() {
		return false, ""
	}
	if st := r.cmd.ProcessState; st != nil && st.ExitCode() != -1 {
		return true, r.tail(40)
	}
	return false, ""
}

// tail is the last n lines of the replica's log.
func (r *replica) tail(n int) string {
	b, err := os.ReadFile(r.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// status reads /api/status.
func (r *replica) status(ctx context.Context) (agent.Status, error) {
	var st agent.Status
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+agent.PathStatus, nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// sample is a replica's Go runtime figures at one moment.
type sample struct {
	iteration   int
	incarnation int
	// role is the replica's role then: a leader runs far more goroutines
	// (loops, watches, monitors) than a standby.
	role       string
	goroutines float64
	heap       float64 // go_memstats_heap_alloc_bytes
	rss        float64 // process_resident_memory_bytes
}

// sample scrapes /metrics for the runtime figures.
func (r *replica) sample(ctx context.Context, iteration int) (sample, error) {
	s := sample{iteration: iteration, incarnation: r.incarnation}
	st, err := r.status(ctx)
	if err != nil {
		return s, err
	}
	s.role = st.Role
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/metrics", nil)
	resp, err := httpClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.goroutines = v
		case "go_memstats_heap_alloc_bytes":
			s.heap = v
		case "process_resident_memory_bytes":
			s.rss = v
		}
	}
	if s.goroutines == 0 {
		return s, fmt.Errorf("%s: no go_goroutines in /metrics", r.name)
	}
	return s, sc.Err()
}
