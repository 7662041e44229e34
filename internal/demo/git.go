package demo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/baton-gitops/baton/render"
)

// Clone is a working copy of the shop repository, driven with the real git
// command as a person would.
type Clone struct {
	// Dir is the working tree.
	Dir string
	// Remote is the URL pushed to (with credentials: never print it).
	Remote string
}

// Git runs git in the clone with a fixed identity and returns its output.
func (c *Clone) Git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Dana Developer", "GIT_AUTHOR_EMAIL=dana@shop.example",
		"GIT_COMMITTER_NAME=Dana Developer", "GIT_COMMITTER_EMAIL=dana@shop.example", "GIT_TERMINAL_PROMPT=0")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		// The remote URL carries a token: never echo the arguments of a push.
		return "", fmt.Errorf("git %s in %s: %w: %s", args[0], c.Dir, err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// PushSample creates the sample repository in dir (an empty folder) with
// one commit and pushes it to every environment's branch of remote.
func PushSample(ctx context.Context, dir, remote string) (*Clone, error) {
	files, err := SampleFiles()
	if err != nil {
		return nil, err
	}
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return nil, fmt.Errorf("sample: %w", err)
		}
	}
	c := &Clone{Dir: dir, Remote: remote}
	steps := [][]string{
		{"init", "-q", "-b", Branch("dev")},
		{"add", "."},
		{"commit", "-q", "-m", "shop: web and api, dev, staging and prod overlays"},
	}
	for _, env := range Environments {
		steps = append(steps, []string{"push", "-q", remote, "HEAD:refs/heads/" + Branch(env)})
	}
	for _, s := range steps {
		if _, err := c.Git(ctx, s...); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Head is the commit of the clone's HEAD.
func (c *Clone) Head(ctx context.Context) (string, error) { return c.Git(ctx, "rev-parse", "HEAD") }

// Pull brings env/dev up to date with the remote (set-image and promotions
// commit there from elsewhere).
func (c *Clone) Pull(ctx context.Context) error {
	_, err := c.Git(ctx, "pull", "-q", "--ff-only", c.Remote, Branch("dev"))
	return err
}

// BadRelease commits, on env/dev, api:1.2.0 together with OOMPatch (the
// stand-in for its memory leak) and pushes it. It returns the commit.
func (c *Clone) BadRelease(ctx context.Context) (string, error) {
	if err := c.Pull(ctx); err != nil {
		return "", err
	}
	kust := filepath.Join(c.Dir, "overlays", "dev", "kustomization.yaml")
	b, err := os.ReadFile(kust)
	if err != nil {
		return "", fmt.Errorf("bad release: %w", err)
	}
	edited, err := render.SetImages(b, render.Image{Name: "api", NewName: "registry.example/api", NewTag: "1.2.0"})
	if err != nil {
		return "", fmt.Errorf("bad release: overlays/dev/kustomization.yaml: %w", err)
	}
	const patches = "patches:\n  - path: scale.yaml\n"
	if !bytes.Contains(edited, []byte(patches)) {
		return "", fmt.Errorf("bad release: overlays/dev/kustomization.yaml has no %q", patches)
	}
	edited = bytes.Replace(edited, []byte(patches), []byte(patches+"  - path: "+filepath.Base(OOMPatchPath)+"\n"), 1)
	if err := os.WriteFile(kust, edited, 0o644); err != nil {
		return "", fmt.Errorf("bad release: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir, filepath.FromSlash(OOMPatchPath)), []byte(OOMPatch), 0o644); err != nil {
		return "", fmt.Errorf("bad release: %w", err)
	}
	return c.commitAndPush(ctx, []string{"add", "overlays/dev"}, []string{"commit", "-q", "-m", "api 1.2.0: new product search"})
}

// Revert reverts commit on env/dev with `git revert` and pushes it. It
// returns the revert commit.
func (c *Clone) Revert(ctx context.Context, commit string) (string, error) {
	if err := c.Pull(ctx); err != nil {
		return "", err
	}
	return c.commitAndPush(ctx, nil, []string{"revert", "--no-edit", commit})
}

func (c *Clone) commitAndPush(ctx context.Context, steps ...[]string) (string, error) {
	for _, s := range steps {
		if s == nil {
			continue
		}
		if _, err := c.Git(ctx, s...); err != nil {
			return "", err
		}
	}
	if _, err := c.Git(ctx, "push", "-q", c.Remote, "HEAD:refs/heads/"+Branch("dev")); err != nil {
		return "", err
	}
	return c.Head(ctx)
}
