package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Platform is an operating system and CPU architecture the image runs on.
type Platform struct {
	OS, Arch string
}

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// variant is the CPU variant an index names for the platform: arm64 is
// conventionally "v8", as official multi-platform images declare it.
func (p Platform) variant() string {
	if p.Arch == "arm64" {
		return "v8"
	}
	return ""
}

// DefaultPlatforms are the platforms `make image` builds.
var DefaultPlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

// ParsePlatforms reads a comma-separated list such as
// "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for _, f := range strings.Split(s, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(f), "/")
		if !ok || osName == "" || arch == "" || strings.Contains(arch, "/") {
			return nil, fmt.Errorf("platform %q: want os/arch, such as linux/amd64", f)
		}
		if osName != "linux" {
			return nil, fmt.Errorf("platform %q: only linux images are built", f)
		}
		out = append(out, Platform{osName, arch})
	}
	return out, nil
}

// CompileOptions say how to build the agent's binary for one platform.
type CompileOptions struct {
	// Dir is the module's root: the git work tree. Required.
	Dir string
	// Package is the main package. Default "./cmd/baton".
	Package string
	// Platform is the target. Required.
	Platform Platform
	// Source stamps the version and commit into the binary.
	Source Source
	// Toolchain, when set, is the exact Go release to compile with
	// (GOTOOLCHAIN, for example go1.26.8; the go command fetches it from the
	// module proxy if it is not the local one). Empty: the go on PATH. The
	// same commit gives the same binary only with the same toolchain.
	Toolchain string
	// Out is the binary's path. Required.
	Out string
}

// Compile builds a static binary (no cgo, so no C library to depend on and
// any platform cross-compiles here) with -trimpath, stripped of its symbol
// table and DWARF, the version and commit stamped as `make build` does.
// Every setting that would otherwise come from the caller's environment is
// fixed, so that two machines produce the same bytes.
func Compile(ctx context.Context, o CompileOptions) error {
	if o.Dir == "" || o.Out == "" || o.Platform.Arch == "" {
		return fmt.Errorf("compile: Dir, Out and Platform are required")
	}
	pkg := o.Package
	if pkg == "" {
		pkg = "./cmd/baton"
	}
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return fmt.Errorf("compile %s: %w", o.Platform, err)
	}
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", o.Source.Version, o.Source.Commit)
	// -buildvcs=false: the version and commit are stamped above; what the
	// go command would add differs between a clone and a git worktree of
	// the same commit (it does not read every layout's metadata alike).
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", o.Out, pkg)
	cmd.Dir = o.Dir
	cmd.Env = compileEnv(os.Environ(), o)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("compile %s for %s: %w\n%s", pkg, o.Platform, err, out.String())
	}
	return nil
}

// compileEnv is the caller's environment with every variable that changes
// the produced binary replaced by a fixed value.
func compileEnv(environ []string, o CompileOptions) []string {
	fixed := map[string]string{
		"CGO_ENABLED": "0",
		"GOOS":        o.Platform.OS,
		"GOARCH":      o.Platform.Arch,
		// The baseline of each architecture, so the binary runs on any CPU
		// of it and a GOAMD64=v3 in someone's environment changes nothing.
		"GOAMD64":      "v1",
		"GOARM64":      "v8.0",
		"GOEXPERIMENT": "",
		// Flags from the environment or `go env -w` would enter the build.
		"GOFLAGS": "-mod=readonly",
	}
	if o.Toolchain != "" {
		fixed["GOTOOLCHAIN"] = o.Toolchain
	}
	var env []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := fixed[k]; !ok {
			env = append(env, kv)
		}
	}
	for k, v := range fixed {
		env = append(env, k+"="+v)
	}
	return env
}
