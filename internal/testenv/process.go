package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one control plane component, started by the test environment
// and logging to its own file.
type process struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	err  error         // exit status; read after done is closed
}

func newProcess(name, path, logDir string, args []string, env ...string) *process {
	return &process{name: name, path: path, args: args, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// start launches the process. Its log is appended to across restarts so a
// fault test keeps the history.
func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group, so a Ctrl-C at the terminal reaches the test
	// binary, which stops the components in order; and killed with the test
	// binary if that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return nil
}

// exited reports whether the process has stopped, and why.
func (p *process) exited() (bool, error) {
	if p.done == nil {
		return true, nil
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// stop asks the process to end, and kills it after a grace period.
func (p *process) stop(grace time.Duration) error {
	if p.cmd == nil {
		return nil
	}
	if done, _ := p.exited(); done {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// kill ends the process at once, as a crash would.
func (p *process) kill() {
	if p.cmd == nil {
		return
	}
	if done, _ := p.exited(); done {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// tail returns the end of the process's log, for error messages.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

var errExited = errors.New("exited")
