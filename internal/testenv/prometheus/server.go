package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Options tune a Server. The zero value scrapes every second and loads no
// rules.
type Options struct {
	// ScrapeInterval is how often targets are scraped and rules evaluated.
	// Zero means one second.
	ScrapeInterval time.Duration
	// RuleFiles are Prometheus rule files (groups: ...) to evaluate; they
	// are copied into the server's folder at start.
	RuleFiles []string
	// Progress receives the build progress on first use. Nil means
	// os.Stderr.
	Progress io.Writer
}

// Server is a running Prometheus.
type Server struct {
	// URL is the base URL of its HTTP API and UI, http://127.0.0.1:port.
	URL string

	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	log  string

	// mu serialises target file writes.
	mu sync.Mutex
}

// Start builds (once) and starts Prometheus on a free loopback port and
// waits until it is ready. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.ScrapeInterval == 0 {
		opts.ScrapeInterval = time.Second
	}
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	bin, err := binDir(ctx, opts.Progress)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "baton-prometheus-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, log: filepath.Join(dir, "prometheus.log")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	for _, sub := range []string{"targets", "rules", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	for i, f := range opts.RuleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("rule file: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rules", fmt.Sprintf("%02d-%s", i, filepath.Base(f))), b, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config(opts.ScrapeInterval)), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	logFile, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(filepath.Join(bin, "prometheus"),
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		// File discovery changes reach the scrape manager after this
		// throttle; the default 5s would slow every test that adds a target.
		"--scrape.discovery-reload-interval=100ms",
		"--web.enable-lifecycle",
		"--log.level=warn",
	)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	// Killed with the test binary if that dies without cleaning up.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	s.done = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// config is the server's configuration: one scrape job fed by the files
// that SetTargets writes, and the copied rule files.
func config(interval time.Duration) string {
	return fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files:
  - rules/*
scrape_configs:
  - job_name: tests
    file_sd_configs:
      - files: [targets/*.json]
        refresh_interval: 1s
`, interval)
}

// waitReady polls /-/ready until the server answers, it exits, or ctx or
// a minute ends.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("prometheus exited during start-up:\n%s", s.Log())
		case <-ctx.Done():
			return fmt.Errorf("prometheus not ready at %s: %w\n%s", s.URL, ctx.Err(), s.Log())
		case <-time.After(50 * time.Millisecond): // a process we cannot watch
		}
	}
}

// SetTargets makes the server scrape addrs (host:port, path /metrics) with
// the label job=job, replacing the job's earlier targets. The change is
// picked up within about a second (the file discovery refresh).
func (s *Server) SetTargets(job string, addrs ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	group := []map[string]any{{"targets": addrs, "labels": map[string]string{"job": job}}}
	b, err := json.Marshal(group)
	if err != nil {
		return err
	}
	// Written aside and renamed, so discovery never reads half a file.
	final := filepath.Join(s.dir, "targets", job+".json")
	tmp := filepath.Join(s.dir, job+".json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("targets of %s: %w", job, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("targets of %s: %w", job, err)
	}
	return nil
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Dir is the server's folder: configuration, rules, data and log.
func (s *Server) Dir() string { return s.dir }

// Stop ends the server and removes its folder.
func (s *Server) Stop() {
	s.stopProcess()
	os.RemoveAll(s.dir)
}

func (s *Server) stopProcess() {
	if s.cmd == nil || s.done == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
