package health

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
)

// The rollout benchmarks run the health side in a child process: this test
// binary again, started with followerEnv set, which init hands to
// runFollower before TestMain could start a control plane. Its CPU time and peak RSS are
// then the checker's own, apart from the benchmark's parent, which applies
// objects and watches the cluster for the reference timings.
//
// The protocol, one line each way: the child prints "ready" once its
// Checker is built (and, for a monitor, "healthy" after the first Healthy
// report); the parent writes "go" (for a wait: when its apply has ended);
// the child prints "done" the moment the wait returns or the window ends,
// then "result <json>" (a followerResult), and exits. The parent times
// "done" with its own monotonic clock: the two processes' wall clocks
// agree, but a step of the machine's clock would skew a wall-clock
// difference.
const (
	followerEnv        = "BATON_BENCH_FOLLOWER" // "wait" or "monitor"
	followerKubeconfig = "BATON_BENCH_KUBECONFIG"
	followerRefs       = "BATON_BENCH_REFS"       // a JSON file of []ObjectRef
	followerWindow     = "BATON_BENCH_WINDOW"     // monitor: how long to measure idle
	followerCPUProfile = "BATON_BENCH_CPUPROFILE" // optional: profile from "go" to the end
)

// followerResult is what the child measured between "go" and its end.
type followerResult struct {
	Overall Overall
	Message string
	// CPUSeconds is user + system CPU time of the whole process from "go"
	// to the end (getrusage).
	CPUSeconds float64
	// Reports counts the monitor's reports during the window.
	Reports int
	// PeakRSSBytes is the process's peak resident set (VmHWM) at the end,
	// start-up included; StartRSSBytes its resident set at "go".
	PeakRSSBytes, StartRSSBytes int64
	// PeakHeapBytes is the largest live heap sampled every 100 ms.
	PeakHeapBytes uint64
	Err           string
}

func init() {
	if mode := os.Getenv(followerEnv); mode != "" {
		os.Exit(runFollower(mode))
	}
}

// runFollower is the child's main: it follows the benchmark's objects with
// a Checker as the agent does and reports what that cost.
func runFollower(mode string) int {
	res, err := follow(mode)
	if err != nil {
		res.Err = err.Error()
	}
	out, _ := json.Marshal(res)
	fmt.Printf("result %s\n", out)
	if err != nil {
		return 1
	}
	return 0
}

func follow(mode string) (followerResult, error) {
	var res followerResult
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv(followerKubeconfig))
	if err != nil {
		return res, fmt.Errorf("follower: kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	raw, err := os.ReadFile(os.Getenv(followerRefs))
	if err != nil {
		return res, fmt.Errorf("follower: %w", err)
	}
	var refs []ObjectRef
	if err := json.Unmarshal(raw, &refs); err != nil {
		return res, fmt.Errorf("follower: refs: %w", err)
	}
	c, err := NewChecker(cfg, CheckerOptions{})
	if err != nil {
		return res, err
	}
	// The agent's Checker lives across syncs: its discovery is warm.
	seen := map[schema.GroupKind]bool{}
	for _, r := range refs {
		gk := schema.GroupKind{Group: r.Group, Kind: r.Kind}
		if !seen[gk] {
			seen[gk] = true
			if _, err := c.mapper.RESTMapping(gk, r.Version); err != nil {
				return res, fmt.Errorf("follower: resolve %s: %w", gk, err)
			}
		}
	}
	in := bufio.NewScanner(os.Stdin)
	goSignal := func() error {
		if !in.Scan() || in.Text() != "go" {
			return fmt.Errorf("follower: expected go on stdin, got %q (%v)", in.Text(), in.Err())
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Println("ready")

	var measure *measurement
	switch mode {
	case "wait":
		if err := goSignal(); err != nil {
			return res, err
		}
		if measure, err = startMeasurement(); err != nil {
			return res, err
		}
		rep := c.Wait(ctx, refs, WaitOptions{Timeout: 15 * time.Minute})
		res.Overall, res.Message = rep.Overall, rep.Message
	case "monitor":
		window, err := time.ParseDuration(os.Getenv(followerWindow))
		if err != nil {
			return res, fmt.Errorf("follower: window: %w", err)
		}
		var mu sync.Mutex // guards reports and last
		reports := 0
		var last Report
		healthy := make(chan struct{})
		var once sync.Once
		done := make(chan error, 1)
		go func() {
			done <- c.Monitor(ctx, refs, MonitorOptions{}, func(r Report) {
				mu.Lock()
				defer mu.Unlock()
				reports++
				last = r
				if r.Overall == Healthy {
					once.Do(func() { close(healthy) })
				}
			})
		}()
		select {
		case <-healthy:
		case err := <-done:
			return res, fmt.Errorf("follower: monitor ended before healthy: %v", err)
		}
		fmt.Println("healthy")
		if err := goSignal(); err != nil {
			return res, err
		}
		if measure, err = startMeasurement(); err != nil {
			return res, err
		}
		mu.Lock()
		before := reports
		mu.Unlock()
		<-time.After(window) // measuring an idle window, not waiting on a condition
		mu.Lock()
		res.Reports, res.Overall, res.Message = reports-before, last.Overall, last.Message
		mu.Unlock()
	default:
		return res, fmt.Errorf("follower: unknown mode %q", mode)
	}
	fmt.Println("done")
	return measure.finish(res)
}

// measurement samples what a follower costs from its start to finish.
type measurement struct {
	cpu0     float64
	rss0     int64
	heapPeak uint64
	mu       sync.Mutex // guards heapPeak
	stop     chan struct{}
	done     chan struct{}
	profile  *os.File
}

func startMeasurement() (*measurement, error) {
	m := &measurement{stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if m.cpu0, err = cpuSeconds(); err != nil {
		return nil, err
	}
	if m.rss0, err = procStatusBytes("VmRSS"); err != nil {
		return nil, err
	}
	if path := os.Getenv(followerCPUProfile); path != "" {
		if m.profile, err = os.Create(path); err != nil {
			return nil, fmt.Errorf("follower: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(m.profile); err != nil {
			return nil, fmt.Errorf("follower: cpu profile: %w", err)
		}
	}
	go m.sampleHeap()
	return m, nil
}

// sampleHeap records the largest live heap every 100 ms.
func (m *measurement) sampleHeap() {
	defer close(m.done)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		m.mu.Lock()
		m.heapPeak = max(m.heapPeak, sample[0].Value.Uint64())
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
	}
}

func (m *measurement) finish(res followerResult) (followerResult, error) {
	if m.profile != nil {
		pprof.StopCPUProfile()
		m.profile.Close()
	}
	close(m.stop)
	<-m.done
	cpu, err := cpuSeconds()
	if err != nil {
		return res, err
	}
	res.CPUSeconds = cpu - m.cpu0
	res.StartRSSBytes = m.rss0
	if res.PeakRSSBytes, err = procStatusBytes("VmHWM"); err != nil {
		return res, err
	}
	res.PeakHeapBytes = m.heapPeak
	return res, nil
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}

// procStatusBytes reads a "kB" line of /proc/self/status, such as VmHWM.
func procStatusBytes(field string) (int64, error) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/self/status %s: %w", field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/self/status: no %s", field)
}
