// Command image builds and pushes Baton's container image without a
// container engine; `make image` and `make image-push` run it.
//
//	image build [-out bin/image] [-version V] [-platforms linux/amd64,linux/arm64] ...
//	image push -image registry/name:tag [-layout bin/image/oci]
//	image manifests -version V [-kustomization manifests/kustomization.yaml] [-image name]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/baton-gitops/baton/internal/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a verb: build, push or manifests")
	}
	switch args[0] {
	case "build":
		return build(ctx, args[1:], out)
	case "push":
		return push(ctx, args[1:], out)
	case "manifests":
		return manifests(args[1:], out)
	}
	return fmt.Errorf("unknown verb %q: want build, push or manifests", args[0])
}

func build(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	dir := fs.String("dir", ".", "the module's root, a git work tree")
	outDir := fs.String("out", "bin/image", "output `folder` (emptied first)")
	version := fs.String("version", "", "version to stamp (default: git describe --tags --always --dirty)")
	name := fs.String("image", image.DefaultImage, "image `name` without tag, for the tarballs and the SBOM")
	repo := fs.String("source", image.DefaultRepository, "source repository `URL` for the labels")
	licenses := fs.String("licenses", "NOASSERTION", "SPDX licence `expression` for the labels")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	toolchain := fs.String("toolchain", "", "exact Go `release` to compile with, e.g. go1.26.8 (default: the go on PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ps, err := image.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	src, err := image.ReadSource(ctx, *dir)
	if err != nil {
		return err
	}
	if *version != "" {
		src.Version = *version
	}
	start := time.Now()
	res, err := image.Build(ctx, image.Options{Dir: *dir, Out: *outDir, Source: src, Image: *name, Repository: *repo,
		Licenses: *licenses, Platforms: ps, Toolchain: *toolchain, Progress: out})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "built %s@%s in %s\n", res.Tag, res.Digest, time.Since(start).Round(100*time.Millisecond))
	for _, p := range res.Platforms {
		fmt.Fprintf(out, "  %-12s %s  load with: docker load -i %s\n", p.Platform, p.Digest, p.Tarball)
	}
	return nil
}

func push(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	ref := fs.String("image", "", "`registry/name:tag` to push to (required)")
	dir := fs.String("layout", "bin/image/oci", "the OCI layout `folder` image build wrote")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" {
		return errors.New("push: -image registry/name:tag is required (make image-push IMAGE=...)")
	}
	idx, err := image.ReadLayout(*dir)
	if err != nil {
		return err
	}
	d, err := image.Push(ctx, idx, *ref, image.PushOptions{Progress: out})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pushed %s\npin it with: (cd manifests && kustomize edit set image baton=%s)\n", d, d)
	return nil
}

// manifests points the install's image at the release being cut.
func manifests(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("manifests", flag.ContinueOnError)
	path := fs.String("kustomization", "manifests/kustomization.yaml", "the install's kustomization `file`")
	name := fs.String("image", image.DefaultImage, "image `name` without tag")
	version := fs.String("version", "", "release `version`, the image's tag (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" {
		return errors.New("manifests: -version is required")
	}
	if err := image.SetKustomizationImage(*path, "baton", *name, *version); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: image baton=%s:%s\n", *path, *name, *version)
	return nil
}
