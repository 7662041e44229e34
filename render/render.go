package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
)

// Snapshot is the read-only tree of one revision, as the source package
// provides it: slash paths, root ".". TreeHash returns the git tree hash of a
// path ("." is the root); equal hashes mean equal content.
type Snapshot interface {
	fs.FS
	TreeHash(path string) (string, error)
}

// DefaultCacheSize is the number of rendered results kept when
// Options.CacheSize is zero.
const DefaultCacheSize = 32

// Options configures a Renderer. The zero value is safe: no remote resources,
// a cache of DefaultCacheSize entries, no logging.
type Options struct {
	// AllowedRemotePrefixes lists URL prefixes (for example
	// "https://github.com/acme/") that remote resources, components and files
	// may start with. Empty refuses every remote reference. A prefix should end
	// with "/" so that "https://github.com/acme" does not also allow
	// "https://github.com/acme-evil".
	AllowedRemotePrefixes []string

	// CacheSize bounds the number of rendered results kept (least recently
	// used evicted first). Zero means DefaultCacheSize; negative disables the
	// cache, so every Render builds.
	CacheSize int

	// Logger receives debug lines about builds (path, tree, object count,
	// duration). Object content is never logged. Nil discards.
	Logger *slog.Logger

	// Limits bound what one render may read and produce; see Limits. The
	// zero value takes the defaults.
	Limits Limits

	// WorkerPath, when set, is an executable that runs each build in a
	// child process (it must call ServeWorker when started with
	// WorkerEnv set; the baton binary does): the build's memory is then
	// bounded by Limits.MaxMemory, and a cancelled or timed-out build is
	// stopped rather than left running. Empty builds in process, where
	// memory is bounded only by the checks made before Kustomize runs.
	WorkerPath string
}

// Renderer renders Kustomize overlays and plain-YAML folders from snapshots.
// It is safe for concurrent use; concurrent renders of the same input share
// one build.
type Renderer struct {
	allowed []string
	limits  Limits
	log     *slog.Logger
	// worker runs builds in child processes; nil builds in process.
	worker *workerPool
	cache  *resultCache // nil when disabled
	flight singleflight.Group

	// builds counts real builds (cache misses); tests assert on it.
	builds atomic.Int64
}

// New validates opts and returns a Renderer.
func New(opts Options) (*Renderer, error) {
	for _, p := range opts.AllowedRemotePrefixes {
		if !isRemote(p) {
			return nil, fmt.Errorf("allowed remote prefix %q is not a remote URL (want e.g. https://github.com/org/)", p)
		}
	}
	r := &Renderer{
		allowed: append([]string(nil), opts.AllowedRemotePrefixes...),
		limits:  opts.Limits.withDefaults(),
		log:     opts.Logger,
	}
	if opts.WorkerPath != "" {
		r.worker = newWorkerPool(opts.WorkerPath)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.CacheSize == 0:
		r.cache = newResultCache(DefaultCacheSize)
	case opts.CacheSize > 0:
		r.cache = newResultCache(opts.CacheSize)
	}
	return r, nil
}

// Close stops the idle render workers. A closed Renderer must not be used
// again.
func (r *Renderer) Close() {
	if r.worker != nil {
		r.worker.close()
	}
}

// Render turns the folder dir of snap into the objects to apply.
//
// A folder with a kustomization file is built with Kustomize; a folder
// without one is rendered as all its *.yaml, *.yml and *.json files,
// recursively, like a generated kustomization. Either the whole set renders
// and passes validation, or an error is returned with no objects.
//
// Results are cached by the snapshot's root tree hash and dir. The root hash,
// not dir's own tree hash, is the key because an overlay reads outside its
// folder (../../base): a change to the base changes the root hash but not
// the overlay's.
//
// The returned objects are shared with the cache: treat them as read-only
// and DeepCopy before changing one. Kustomize cannot be interrupted, so a
// cancelled ctx makes Render return early while the build finishes in the
// background and still fills the cache.
func (r *Renderer) Render(ctx context.Context, snap Snapshot, dir string) (Result, error) {
	if snap == nil {
		return Result{}, errors.New("render: nil snapshot")
	}
	if strings.HasPrefix(filepath.ToSlash(dir), "/") {
		return Result{}, fmt.Errorf("render: %s: %w (absolute paths are refused: give a path relative to the snapshot root)", dir, ErrPathEscape)
	}
	p, err := treePath(dir)
	if err != nil {
		return Result{}, fmt.Errorf("render: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("render %s: %w", p, err)
	}
	root, err := snap.TreeHash(".")
	if err != nil {
		return Result{}, fmt.Errorf("render %s: tree hash of snapshot root: %w", p, err)
	}
	key := root + "\x00" + p
	if e, ok := r.cache.get(key); ok {
		return e.result, e.err
	}
	ch := r.flight.DoChan(key, func() (any, error) {
		if e, ok := r.cache.get(key); ok {
			return e.result, e.err
		}
		res, err := r.build(snap, p, root)
		if cacheable(err) {
			r.cache.add(key, cacheEntry{result: res, err: err})
		}
		return res, err
	})
	select {
	case <-ctx.Done():
		return Result{}, fmt.Errorf("render %s: %w", p, ctx.Err())
	case out := <-ch:
		if out.Err != nil {
			return Result{}, out.Err
		}
		return out.Val.(Result), nil
	}
}

// build renders one folder; it is deterministic for a given tree, which is
// why its errors are cached like its results.
func (r *Renderer) build(snap fs.FS, dir, root string) (res Result, err error) {
	r.builds.Add(1)
	start := time.Now()
	// A panic here would run on singleflight's goroutine and take the whole
	// agent down; malformed input has made Kustomize panic before.
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("render %s: panic while rendering (a bug in kustomize or baton): %v", dir, p)
		}
	}()
	if r.worker != nil {
		res, err = r.worker.build(snap, dir, workerRequest{Dir: dir, Allowed: r.allowed, Limits: r.limits})
	} else {
		res, err = r.buildUncached(snap, dir)
	}
	if err != nil {
		r.log.Debug("render failed", "path", dir, "tree", root, "duration", time.Since(start))
		return Result{}, fmt.Errorf("render %s: %w", dir, err)
	}
	r.log.Debug("rendered", "path", dir, "tree", root, "objects", len(res.Objects),
		"digest", res.Digest, "duration", time.Since(start))
	return res, nil
}

func (r *Renderer) buildUncached(snap fs.FS, dir string) (Result, error) {
	fsys, kfile, g, err := r.scanFolder(snap, dir)
	if err != nil {
		return Result{}, err
	}
	if err := checkFanOut(g, dir, kfile, r.limits); err != nil {
		return Result{}, err
	}
	rm, err := runKustomize(fsys, dir)
	if err != nil {
		// Kustomize wraps the errors of its reads in its own words: the
		// limit is what stopped it.
		if lerr := fsys.limits.err(); lerr != nil {
			return Result{}, lerr
		}
		return Result{}, diagnose(err, g)
	}
	if max := r.limits.MaxObjects; max >= 0 && rm.Size() > max {
		return Result{}, &LimitError{Limit: LimitObjects, File: joinTree(dir, kustomizationName(kfile)),
			Detail: fmt.Sprintf("it renders %d objects", rm.Size()), Max: fmt.Sprintf("%d objects", max)}
	}
	objs, err := toObjects(rm, g)
	if err != nil {
		return Result{}, err
	}
	sortObjects(objs)
	y, err := canonicalYAML(objs)
	if err != nil {
		return Result{}, err
	}
	return Result{Objects: objs, Digest: digestOf(y), yaml: y}, nil
}

// scanFolder prepares the build of dir: the filesystem Kustomize reads
// (with the kustomization generated for a plain folder, and the limits),
// the name of dir's kustomization file ("" for a plain folder) and what
// scan learned of the files.
func (r *Renderer) scanFolder(snap fs.FS, dir string) (*snapshotFS, string, *graph, error) {
	fi, err := fs.Stat(snap, dir)
	if err != nil {
		return nil, "", nil, fmt.Errorf("folder %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, "", nil, fmt.Errorf("%s is a file, not a folder", dir)
	}
	kfile, err := kustomizationFile(snap, dir)
	if err != nil {
		return nil, "", nil, err
	}
	var overrides map[string][]byte
	if kfile == "" {
		gen, err := plainKustomization(snap, dir)
		if err != nil {
			return nil, "", nil, err
		}
		overrides = map[string][]byte{joinTree(dir, "kustomization.yaml"): gen}
	}
	fsys := newSnapshotFS(snap, overrides)
	fsys.limits = newLimiter(r.limits)
	g, err := scan(fsys, dir, r.allowed)
	if err != nil {
		if lerr := fsys.limits.err(); lerr != nil {
			return nil, "", nil, lerr
		}
		return nil, "", nil, err
	}
	return fsys, kfile, g, nil
}

// runKustomize builds dir with a fresh Kustomizer (one is not meant to be
// shared between goroutines).
func runKustomize(fsys *snapshotFS, dir string) (resmap.ResMap, error) {
	return krusty.MakeKustomizer(kustomizeOptions()).Run(fsys, osPath(dir))
}

// kustomizeOptions are the safe-by-default build options: files load only
// from below each kustomization's root (bases are reached as directories),
// only builtin plugins run (no exec, container or Go plugins), Helm is off,
// and ordering is left to sortObjects.
func kustomizeOptions() *krusty.Options {
	o := krusty.MakeDefaultOptions()
	o.LoadRestrictions = types.LoadRestrictionsRootOnly
	o.PluginConfig = types.DisabledPluginConfig()
	o.PluginConfig.HelmConfig.Enabled = false
	o.Reorder = krusty.ReorderOptionUnspecified
	o.AddManagedbyLabel = false
	return o
}

// Result is the rendered form of one folder at one revision.
type Result struct {
	// Objects in apply order (see sortObjects): a fixed kind order, then
	// group, namespace and name. Shared with the cache: read-only.
	Objects []*unstructured.Unstructured

	// Digest is "sha256:" and the hex SHA-256 of YAML(): equal digests mean
	// equal rendered output.
	Digest string

	yaml []byte // canonical YAML, kept from the build
}

// YAML returns the objects as one multi-document YAML stream in Objects
// order, each with sorted keys: the bytes Digest is computed over.
func (r Result) YAML() ([]byte, error) {
	if r.yaml != nil {
		return append([]byte(nil), r.yaml...), nil
	}
	return canonicalYAML(r.Objects)
}
