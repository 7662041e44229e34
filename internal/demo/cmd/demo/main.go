// Command demo runs Baton's demonstration on the local control plane and
// forge (`make demo`), or stops a running one (`make demo-down`).
//
//	demo up     build what is needed, start everything, tell the story, then
//	            keep running until Ctrl-C or `demo down`
//	demo down   stop the demo started by `demo up` (its pid file), nothing else
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: demo up|down")
		os.Exit(2)
	}
	state, err := stateDir()
	if err == nil {
		if os.Args[1] == "up" {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			err = up(ctx, state)
			stop()
		} else {
			err = down(state)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// stateDir is where the running demo keeps its pid file, configuration and
// the baton binary: demo/ in the cache folder the tests use ($BATON_CACHE_DIR
// or the user cache folder + /baton).
func stateDir() (string, error) {
	cache, err := toolcache.Dir()
	if err != nil {
		return "", fmt.Errorf("state folder: %w", err)
	}
	dir := filepath.Join(cache, "demo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("state folder: %w", err)
	}
	return dir, nil
}

func pidFile(state string) string { return filepath.Join(state, "demo.pid") }

// down signals the process in the pid file and waits for it to exit.
func down(state string) error {
	b, err := os.ReadFile(pidFile(state))
	if errors.Is(err, os.ErrNotExist) {
		fmt.Println("no demo is running (no", pidFile(state)+")")
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s: not a process id: %q", pidFile(state), b)
	}
	p, _ := os.FindProcess(pid) // always succeeds on Unix
	if err := p.Signal(syscall.SIGTERM); err != nil {
		_ = os.Remove(pidFile(state))
		fmt.Println("the demo (pid", pid, ") was not running; removed its pid file")
		return nil
	}
	fmt.Println("stopping the demo (pid", strconv.Itoa(pid)+") ...")
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.Signal(syscall.Signal(0)) != nil {
			fmt.Println("demo stopped")
			return nil
		}
		time.Sleep(200 * time.Millisecond) // polling another process's exit: no event to wait on
	}
	return fmt.Errorf("the demo (pid %d) still runs after 60s", pid)
}

// syscallZero probes whether a process exists.
const syscallZero = syscall.Signal(0)
