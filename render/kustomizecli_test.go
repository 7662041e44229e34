package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

// kustomizeCLIVersion is the kustomize CLI built from the same
// sigs.k8s.io/kustomize/api version as go.mod's (v5.8.2 requires api
// v0.21.2): it is the unpatched reference for the benchmarks and for the
// byte-identical tests of third_party/kustomize-api. ensureKustomizeCLI
// checks the pairing, so a go.mod bump without this one fails loudly.
const kustomizeCLIVersion = "v5.8.2"

var cliOnce struct {
	sync.Once
	bin string
	err error
}

// ensureKustomizeCLI returns the kustomize CLI binary: $BATON_KUSTOMIZE, or
// the one toolcache builds once per machine (go install, about a minute) into
// the cache folder bin/kustomize-<version>. Either way it must be built from
// the kustomize/api version go.mod requires.
func ensureKustomizeCLI(tb testing.TB) string {
	tb.Helper()
	cliOnce.Do(func() {
		cliOnce.bin, cliOnce.err = buildKustomizeCLI()
	})
	if cliOnce.err != nil {
		tb.Fatal(cliOnce.err)
	}
	return cliOnce.bin
}

func buildKustomizeCLI() (string, error) {
	bin := os.Getenv("BATON_KUSTOMIZE")
	if bin == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		dir, err := toolcache.Ensure(ctx, toolcache.Tool{
			Name: "kustomize", Version: kustomizeCLIVersion,
			Programs: []toolcache.Program{{Name: "kustomize", Build: func(ctx context.Context, dir string) error {
				return toolcache.GoInstall(ctx, dir, "-ldflags", "-s -w", "sigs.k8s.io/kustomize/kustomize/v5@"+kustomizeCLIVersion)
			}}},
		}, os.Stderr)
		if err != nil {
			return "", err
		}
		bin = filepath.Join(dir, "kustomize")
	}
	// The CLI is only a fair baseline, and only an unpatched reference, when
	// it is built from the kustomize/api version this module requires.
	cliAPI, err := binaryModuleVersion(bin, "sigs.k8s.io/kustomize/api")
	if err != nil {
		return "", err
	}
	ours, err := linkedKustomizeAPI()
	if err != nil {
		return "", err
	}
	if cliAPI != ours {
		return "", fmt.Errorf("kustomize CLI %s is built from kustomize/api %s, but baton requires %s: use the CLI release of %s (kustomizeCLIVersion)",
			bin, cliAPI, ours, ours)
	}
	return bin, nil
}

// linkedKustomizeAPI is the version of sigs.k8s.io/kustomize/api that go.mod
// requires (the version a replace stands in for).
func linkedKustomizeAPI() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "sigs.k8s.io/kustomize/api").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m sigs.k8s.io/kustomize/api: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// binaryModuleVersion reads a dependency's version from a Go binary's build
// information (`go version -m`); a dependency replaced by another module or
// a folder is refused, as the reference must be the released code.
func binaryModuleVersion(bin, module string) (string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return "", fmt.Errorf("go version -m %s: %w", bin, err)
	}
	var version string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == "dep" && f[1] == module:
			version = f[2]
		case version != "" && len(f) > 0 && f[0] == "=>":
			return "", fmt.Errorf("%s: %s is replaced by %s: want the released module", bin, module, strings.Join(f[1:], " "))
		case version != "":
			return version, nil
		}
	}
	if version == "" {
		return "", fmt.Errorf("%s: no %s in its build information", bin, module)
	}
	return version, nil
}

// kustomizeTree is one kustomization to build both ways: dir, a slash path
// below root (the folder presented as the snapshot).
type kustomizeTree struct {
	name, root, dir string
}

// libraryBuild builds a tree with the kustomize/api this module links (with
// Baton's build options) and returns kustomize's own output, before Baton
// sorts or validates anything: the bytes `kustomize build` prints.
func libraryBuild(tree kustomizeTree) (string, error) {
	rm, err := runKustomize(newSnapshotFS(os.DirFS(tree.root), nil), tree.dir)
	if err != nil {
		return "", err
	}
	y, err := rm.AsYaml()
	return string(y), err
}

// cliBuild runs `kustomize build` on the same tree. A failure's message is
// returned as an error, with the tree's disk location taken out of the
// paths it names, as Baton's snapshot shows the root as "/".
func cliBuild(bin string, tree kustomizeTree) (string, error) {
	var stdout, stderr strings.Builder
	cmd := exec.Command(bin, "build", filepath.Join(tree.root, filepath.FromSlash(tree.dir)))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return "", err
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "Error: "); i >= 0 {
			msg = msg[i+len("Error: "):]
		}
		return "", errors.New(strings.ReplaceAll(msg, filepath.Clean(tree.root), ""))
	}
	return stdout.String(), nil
}

// assertSameBuild builds tree both ways and fails the test on any difference
// in the output or the error message.
func assertSameBuild(t *testing.T, bin string, tree kustomizeTree) {
	t.Helper()
	want, wantErr := cliBuild(bin, tree)
	got, gotErr := libraryBuild(tree)
	switch {
	case wantErr != nil || gotErr != nil:
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Errorf("%s: errors differ\nkustomize CLI: %v\nbaton:         %v", tree.name, wantErr, gotErr)
		}
	case want != got:
		t.Errorf("%s: output differs from the kustomize CLI's (%d and %d bytes)\n%s", tree.name, len(want), len(got), firstDifference(want, got))
	}
}

// firstDifference shows the first differing line of two outputs.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d:\nkustomize CLI: %q\nbaton:         %q", i+1, w[i], g[i])
		}
	}
	return fmt.Sprintf("one output is a prefix of the other (%d and %d lines)", len(w), len(g))
}

// execOutput runs a command and returns its standard output.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
