package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/githash"
	"github.com/baton-gitops/baton/render"
	"github.com/baton-gitops/baton/source"
)

// setImageAttempts bounds the retries when another writer moves the branch
// between our read and our push.
const setImageAttempts = 5

func (c *cli) setImageCommand() *cobra.Command {
	var envName, author, format string
	cmd := &cobra.Command{
		Use:   "set-image --env NAME IMAGE=NEWIMAGE[:TAG][@DIGEST]... [--author 'Name <email>'] [-o table|json|yaml]",
		Short: "commit an image bump to an environment's overlay (for CI after an image push)",
		Long: "Sets images: entries of the environment's overlay kustomization on its branch and pushes\n" +
			"the commit with a lease: if someone else moved the branch first, the edit is redone on\n" +
			"their commit (up to 5 times). IMAGE is the image name as the manifests write it. Nothing\n" +
			"is committed when the overlay already pins these images.",
		Example: "baton set-image --env dev app=registry.example/app:1.4.2\n" +
			"baton set-image --env dev web=:2.0.1 worker=registry.example/worker@sha256:4f1c...",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 0 {
				return usageError("give at least one IMAGE=NEWIMAGE[:TAG][@DIGEST]")
			}
			if format != "" {
				if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
					return err
				}
			}
			var images []render.Image
			for _, a := range args {
				img, err := parseImageArg(a)
				if err != nil {
					return &exitError{2, err}
				}
				images = append(images, img)
			}
			cfg, err := c.loadConfig()
			if err != nil {
				return err
			}
			env, err := environment(cfg, envName)
			if err != nil {
				return err
			}
			a := cfg.Author(env.Name)
			who := source.Signature{Name: a.Name, Email: a.Email}
			if author != "" {
				if who, err = parseAuthor(author); err != nil {
					return &exitError{2, err}
				}
			}
			out, err := setImages(ctx, cfg, env, images, who, strings.Join(args, " "))
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				return writeJSON(c.stdout, out)
			case formatYAML:
				return writeYAML(c.stdout, out)
			case formatTable:
				return table(c.stdout, []string{"ENVIRONMENT", "BRANCH", "FILE", "COMMIT", "CHANGED"},
					[][]string{{out.Environment, out.Branch, out.File, out.Commit, fmt.Sprint(out.Changed)}})
			}
			if !out.Changed {
				fmt.Fprintf(c.stdout, "%s: %s already pins %s at %s\n", out.Environment, out.File, strings.Join(args, " "), githash.Short(out.Commit))
				return nil
			}
			fmt.Fprintf(c.stdout, "%s: pushed %s to %s (%s)\n", out.Environment, githash.Short(out.Commit), out.Branch, out.File)
			return nil
		},
	}
	c.envFlag(cmd, &envName, "environment name (required)")
	cmd.Flags().StringVar(&author, "author", "", "commit author as 'Name <email>' (default: pipeline.author)")
	outputFlag(cmd, &format, "", formatTable, formatJSON, formatYAML)
	return cmd
}

// setImageOutcome is what set-image did.
type setImageOutcome struct {
	Environment string `json:"environment"`
	Branch      string `json:"branch"`
	File        string `json:"file"`
	// Commit is the pushed commit, or the branch head when nothing changed.
	Commit  string `json:"commit"`
	Changed bool   `json:"changed"`
}

// setImages edits the overlay's kustomization on the branch head and pushes
// it with a lease, redoing the edit on the new head when the lease is lost.
func setImages(ctx context.Context, cfg *config.Config, env *config.Environment, images []render.Image, who source.Signature, what string) (setImageOutcome, error) {
	repo, head, err := openBranch(ctx, cfg, env, env.Branch)
	if err != nil {
		return setImageOutcome{Environment: env.Name, Branch: env.Branch}, err
	}
	defer repo.Close()
	return editImages(ctx, repo, head, env, images, who, what)
}

// editImages does the work of setImages on an open repository from head,
// which may be stale: the lease then fails and the edit is redone.
func editImages(ctx context.Context, repo *source.Repository, head *source.Revision, env *config.Environment, images []render.Image, who source.Signature, what string) (setImageOutcome, error) {
	out := setImageOutcome{Environment: env.Name, Branch: env.Branch}
	for attempt := 1; ; attempt++ {
		file, content, err := kustomizationFile(head.Snapshot, env.Path)
		if err != nil {
			return out, fmt.Errorf("%s@%s: %w", repo.URL(), env.Branch, err)
		}
		out.File = file
		edited, err := render.SetImages(content, images...)
		if err != nil {
			return out, fmt.Errorf("%s@%s:%s: %w", repo.URL(), env.Branch, file, err)
		}
		if bytes.Equal(edited, content) {
			out.Commit = head.Commit
			return out, nil
		}
		commit, err := repo.Commit(ctx, source.CommitRequest{
			Branch: env.Branch, Parent: head.Commit, Files: map[string][]byte{file: edited},
			Author: who, Message: fmt.Sprintf("set-image %s: %s\n\nBaton-Set-Image: %s\n", env.Name, what, what),
		})
		if err != nil {
			return out, err
		}
		err = repo.Push(ctx, source.PushRequest{Branch: env.Branch, Commit: commit, ExpectedOld: head.Commit})
		if err == nil {
			out.Commit, out.Changed = commit, true
			return out, nil
		}
		if !errors.Is(err, source.ErrLeaseLost) || attempt == setImageAttempts {
			return out, err
		}
		// Somebody moved the branch: read the new head and redo the edit.
		if _, err := repo.Poll(ctx); err != nil {
			return out, err
		}
		if head = repo.Revision(env.Branch); head == nil {
			return out, fmt.Errorf("%s@%s: branch disappeared", repo.URL(), env.Branch)
		}
	}
}

// kustomizationFile finds the overlay's kustomization file
// (render.KustomizationFile) and reads it.
func kustomizationFile(snap fs.ReadFileFS, dir string) (string, []byte, error) {
	name, err := render.KustomizationFile(snap, dir)
	if err != nil {
		return "", nil, err
	}
	if name == "" {
		return "", nil, fmt.Errorf("%s has no kustomization file: set-image edits a kustomization's images:", dir)
	}
	p := path.Join(dir, name)
	b, err := snap.ReadFile(p)
	return p, b, err
}

// parseImageArg reads NAME=NEWIMAGE[:TAG][@DIGEST]. A NEWIMAGE equal to
// NAME, or empty (NAME=:TAG), changes only the tag or digest.
func parseImageArg(arg string) (render.Image, error) {
	name, ref, ok := strings.Cut(arg, "=")
	if !ok || name == "" || ref == "" {
		return render.Image{}, fmt.Errorf("%q: want IMAGE=NEWIMAGE[:TAG][@DIGEST]", arg)
	}
	img := render.Image{Name: name}
	if i := strings.Index(ref, "@"); i >= 0 {
		img.Digest, ref = ref[i+1:], ref[:i]
		if !strings.Contains(img.Digest, ":") {
			return render.Image{}, fmt.Errorf("%q: digest %q: want ALGORITHM:HEX such as sha256:...", arg, img.Digest)
		}
	}
	// A tag follows the last colon after the last slash (a registry port
	// comes before a slash).
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		img.NewTag, ref = ref[i+1:], ref[:i]
	}
	if ref != "" && ref != name {
		img.NewName = ref
	}
	if img.NewTag == "" && img.Digest == "" {
		return render.Image{}, fmt.Errorf("%q: give a tag (:1.4.2) or a digest (@sha256:...)", arg)
	}
	return img, nil
}

// parseAuthor reads "Name <email>".
func parseAuthor(s string) (source.Signature, error) {
	name, rest, ok := strings.Cut(s, "<")
	email, _, ok2 := strings.Cut(rest, ">")
	name, email = strings.TrimSpace(name), strings.TrimSpace(email)
	if !ok || !ok2 || name == "" || !strings.Contains(email, "@") {
		return source.Signature{}, fmt.Errorf("--author %q: want 'Name <email>'", s)
	}
	return source.Signature{Name: name, Email: email}, nil
}
