package gitserver

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitExecPath is the folder of git's helper programs (git-upload-pack,
// git-http-backend, ...).
func gitExecPath(t testing.TB, gitPath string) string {
	t.Helper()
	out, err := exec.Command(gitPath, "--exec-path").Output()
	if err != nil {
		t.Fatalf("gitserver: git --exec-path: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// isolatedEnv is the environment for every git process the package starts:
// no system or user configuration, no prompts, a fixed identity, so that
// tests behave the same on every machine.
func isolatedEnv(home string) []string {
	env := []string{
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + filepath.Join(home, "gitconfig"),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Baton Test",
		"GIT_AUTHOR_EMAIL=test@baton.invalid",
		"GIT_COMMITTER_NAME=Baton Test",
		"GIT_COMMITTER_EMAIL=test@baton.invalid",
		"LC_ALL=C",
	}
	for _, k := range []string{"PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// RunGit runs git in dir with an isolated environment plus extra, fails the
// test on error (showing stderr) and returns the trimmed standard output.
func RunGit(t testing.TB, dir string, extra []string, args ...string) string {
	t.Helper()
	out, err := TryGit(dir, extra, args...)
	if err != nil {
		t.Fatalf("gitserver: git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryGit is RunGit that returns the error (with git's stderr in it) instead
// of failing the test: for commands a test expects to fail.
func TryGit(dir string, extra []string, args ...string) (string, error) {
	home, err := os.MkdirTemp("", "gitserver-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	return gitIn(dir, append(isolatedEnv(home), extra...), nil, args...)
}

func gitIn(dir string, env []string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &gitError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

type gitError struct {
	err    error
	stderr string
}

func (e *gitError) Error() string { return e.err.Error() + ": " + e.stderr }
func (e *gitError) Unwrap() error { return e.err }

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("gitserver: random token: %v", err)
	}
	return hex.EncodeToString(b)
}

// writeFile writes data to a new file called name in a fresh temporary
// folder of the test and returns its path.
func writeFile(t testing.TB, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatalf("gitserver: write %s: %v", p, err)
	}
	return p
}

func writeAt(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatalf("gitserver: write %s: %v", path, err)
	}
}
