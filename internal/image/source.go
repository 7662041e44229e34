package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Source is what the image says about the code it was built from.
type Source struct {
	// Commit is the full hash of the checked-out commit.
	Commit string
	// Version is the release version the binary is stamped with: `git
	// describe --tags --always --dirty`, as `make build` stamps it.
	Version string
	// Time is the commit's committer time, or SOURCE_DATE_EPOCH when set:
	// every timestamp in the image is this one, so that a rebuild of the
	// same commit gives the same bytes.
	Time time.Time
}

// ReadSource reads the commit, version and time of the git work tree at
// dir. SOURCE_DATE_EPOCH, when set, overrides the time, as reproducible
// builds conventionally allow.
func ReadSource(ctx context.Context, dir string) (Source, error) {
	var s Source
	var err error
	if s.Commit, err = git(ctx, dir, "rev-parse", "HEAD"); err != nil {
		return s, err
	}
	if s.Version, err = git(ctx, dir, "describe", "--tags", "--always", "--dirty"); err != nil {
		return s, err
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git(ctx, dir, "log", "-1", "--format=%ct", "HEAD"); err != nil {
			return s, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return s, fmt.Errorf("source date %q: want seconds since 1970: %w", epoch, err)
	}
	s.Time = time.Unix(sec, 0).UTC()
	return s, nil
}

// git runs one git command in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s in %s: %w: %s", strings.Join(args, " "), dir, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
