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
	// peakAll is the highest summed resident memory (MiB) of the agent
	// and its render workers sampled so far.
	peakAll float64
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
	// A benchmark killed (a timeout, Ctrl-C) leaves no agent behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
		p.sample()
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
	peakRSS, rss float64 // MiB, the agent's own
	cpu          time.Duration
	// Of the agent with its render workers (child processes, which an
	// agent's container also pays for): the peak of their summed resident
	// memory as sampled by waitFor, and all their CPU time.
	peakRSSAll float64
	cpuAll     time.Duration
}

// procStat is what /proc tells of one process: resident memory (MiB), its
// peak, its CPU time and its waited-for children's.
type procStat struct {
	rss, hwm         float64
	cpu, childrenCPU time.Duration
}

func readProc(pid int) (procStat, error) {
	var ps procStat
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
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
			ps.hwm = kb / 1024
		case "VmRSS":
			ps.rss = kb / 1024
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// Fields after the command name, which is in parentheses: utime,
	// stime, cutime and cstime are the 14th to 17th fields, in clock ticks
	// (100 a second on Linux).
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	tick := func(i int) time.Duration {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(n) * 10 * time.Millisecond
	}
	ps.cpu = tick(11) + tick(12)
	ps.childrenCPU = tick(13) + tick(14)
	return ps, nil
}

// children lists the agent's live child processes (its render workers).
func (p *agentProc) children() []int {
	// Each thread lists the children it forked; Go forks from any thread.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.cmd.Process.Pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// sample records the summed resident memory of the agent and its render
// workers now, for usage's peak.
func (p *agentProc) sample() {
	total := 0.0
	if ps, err := readProc(p.cmd.Process.Pid); err == nil {
		total += ps.rss
	}
	for _, c := range p.children() {
		if ps, err := readProc(c); err == nil {
			total += ps.rss
		}
	}
	p.peakAll = max(p.peakAll, total)
}

// usage reads the agent's peak and current resident memory and its CPU
// time (user and system) from /proc, and those of it with its workers.
func (p *agentProc) usage() usage {
	p.b.Helper()
	p.sample()
	ps, err := readProc(p.cmd.Process.Pid)
	if err != nil {
		p.b.Fatal(err)
	}
	u := usage{peakRSS: ps.hwm, rss: ps.rss, cpu: ps.cpu, peakRSSAll: max(p.peakAll, ps.hwm)}
	u.cpuAll = ps.cpu + ps.childrenCPU
	for _, c := range p.children() {
		if cs, err := readProc(c); err == nil {
			u.cpuAll += cs.cpu
		}
	}
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
	b.Logf("%s: %.1fs wall, %.1f CPU s, peak RSS %.0f MiB (now %.0f MiB); with its render workers %.1f CPU s, peak RSS %.0f MiB (sampled); load average %s; GOMAXPROCS of the agent: the machine's %d cores",
		what, elapsed.Seconds(), u.cpu.Seconds(), u.peakRSS, u.rss, u.cpuAll.Seconds(), u.peakRSSAll, loadAverage(), numCPU())
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
