package scalebench

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/testenv"
)

// agentProc is the agent run as a child process, as in a pod.
type agentProc struct {
	b       *testing.B
	cmd     *exec.Cmd
	done    chan struct{}
	addr    string
	started time.Time
	logPath string
}

// startAgent runs `baton agent` with configText, to which it adds the
// listen address and a cache folder of its own.
func startAgent(b *testing.B, configText string) *agentProc {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := b.TempDir()
	text := configText + fmt.Sprintf("listen: {http: %q}\n", addr)
	text = strings.Replace(text, "agent:\n", fmt.Sprintf("agent:\n  cacheDir: %s\n", filepath.Join(dir, "cache")), 1)
	cfg := filepath.Join(dir, "baton.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	p := &agentProc{b: b, addr: addr, done: make(chan struct{}), logPath: filepath.Join(dir, "agent.log")}
	log, err := os.Create(p.logPath)
	if err != nil {
		b.Fatal(err)
	}
	p.cmd = exec.Command(testenv.BatonBinary(b), "agent", "--config", cfg, "--kubeconfig", env.KubeconfigPath(),
		"--identity", "bench", "--log-format", "json", "--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = log, log
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); log.Close(); close(p.done) }()
	b.Cleanup(p.stop)
	return p
}

// stop sends SIGTERM and waits.
func (p *agentProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// status reads /api/status; ok is false while the agent does not answer.
func (p *agentProc) status() (agent.Status, bool) {
	select {
	case <-p.done:
		p.b.Fatalf("the agent exited; the end of its log:\n%s", p.tail(30))
	default:
	}
	resp, err := http.Get("http://" + p.addr + agent.PathStatus)
	if err != nil {
		return agent.Status{}, false
	}
	defer resp.Body.Close()
	var st agent.Status
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return agent.Status{}, false
	}
	return st, true
}

// waitFor polls the status every interval until cond holds or within
// passes; it fails the benchmark with the last progress then.
func (p *agentProc) waitFor(within, interval time.Duration, what string, cond func(agent.Status) (bool, string)) agent.Status {
	p.b.Helper()
	deadline := time.Now().Add(within)
	progress := "no status yet"
	for {
		if st, ok := p.status(); ok {
			var done bool
			if done, progress = cond(st); done {
				return st
			}
		}
		if time.Now().After(deadline) {
			p.b.Fatalf("%s: not within %s: %s; the end of the agent's log:\n%s", what, within, progress, p.tail(30))
		}
		time.Sleep(interval) // polling the agent's status with a deadline
	}
}

// usage is the process's resources so far.
type usage struct {
	peakRSS, rss float64 // MiB
	cpu          time.Duration
}

// usage reads the process's peak and current resident memory and its CPU
// time (user and system) from /proc.
func (p *agentProc) usage() usage {
	p.b.Helper()
	pid := p.cmd.Process.Pid
	var u usage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		p.b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[0], 64)
		switch k {
		case "VmHWM":
			u.peakRSS = kb / 1024
		case "VmRSS":
			u.rss = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		p.b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 14th and 15th fields, in clock ticks (100 a second on
	// Linux).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.cpu = time.Duration(utime+stime) * 10 * time.Millisecond
	return u
}

// loadAverage returns /proc/loadavg's first three figures: how loaded the
// shared machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// report logs and records the agent's figures.
func report(b *testing.B, what string, elapsed time.Duration, u usage) {
	b.Helper()
	b.Logf("%s: %.1fs wall, %.1f CPU s, peak RSS %.0f MiB (now %.0f MiB); load average %s; GOMAXPROCS of the agent: the machine's %d cores",
		what, elapsed.Seconds(), u.cpu.Seconds(), u.peakRSS, u.rss, loadAverage(), numCPU())
}

func numCPU() int { return runtime.NumCPU() }

// writeFile writes content to a fresh file, as a mounted Secret would be.
func writeFile(b *testing.B, name, content string) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return p
}

// tail returns the last n lines of the agent's log.
func (p *agentProc) tail(n int) string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
