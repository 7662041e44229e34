package forge

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

// GiteaVersion is the Gitea the tests run. Changing it builds a new cache
// folder; v1.26.0 is the newest that builds from the module proxy as is
// (see the shared local-forge notes).
const GiteaVersion = "v1.26.0"

// giteaModule is the module the nested build module in build/gitea pins.
const giteaModule = "code.gitea.io/gitea"

// runtimeFolders are the data folders a Gitea built without the bindata
// tag reads at run time; they are copied next to the binary.
var runtimeFolders = []string{"options", "templates", "public"}

// EnsureBinaries builds Gitea into the tool cache once, printing a progress
// line to progress. `make testenv` calls it so the first, slow build (about
// 8 minutes on 2 cores) shows its progress before any test starts.
func EnsureBinaries(ctx context.Context, progress io.Writer) error {
	_, err := ensureBinary(ctx, progress)
	return err
}

// ensureBinary returns the cache folder holding the gitea binary and its
// runtime folders.
func ensureBinary(ctx context.Context, progress io.Writer) (string, error) {
	if progress == nil {
		progress = io.Discard
	}
	return toolcache.Ensure(ctx, toolcache.Tool{
		Name:    "gitea",
		Version: GiteaVersion,
		Setup:   copyRuntimeFolders,
		Programs: []toolcache.Program{{Name: "gitea", Build: func(ctx context.Context, dir string) error {
			return toolcache.GoBuild(ctx, "gitea", filepath.Join(dir, "gitea"),
				"-tags", "sqlite sqlite_unlock_notify",
				"-ldflags", "-s -w -X main.Version="+GiteaVersion[1:],
				giteaModule)
		}}},
	}, progress)
}

// copyRuntimeFolders copies options/, templates/ and public/ from Gitea's
// module source into dir. The module cache is read-only, so files are
// copied rather than linked, and made writable.
func copyRuntimeFolders(ctx context.Context, dir string) error {
	src, err := toolcache.ModuleDir(ctx, "gitea", giteaModule)
	if err != nil {
		return err
	}
	for _, name := range runtimeFolders {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("copy gitea %s: %w", name, err)
		}
		if err := os.CopyFS(filepath.Join(dir, name), os.DirFS(filepath.Join(src, name))); err != nil {
			return fmt.Errorf("copy gitea %s from %s: %w", name, src, err)
		}
	}
	return nil
}
