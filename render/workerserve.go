package render

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/baton-gitops/baton/internal/fsdir"
)

// ServeWorker runs one build for the agent that started this process (see
// Options.WorkerPath) and returns the exit code: the protocol runs over
// stdin and stdout, so nothing else may write to stdout (os.Stdout is
// pointed at stderr while it runs). A program that may be a worker calls,
// first thing in main:
//
//	if render.IsWorker() {
//		os.Exit(render.ServeWorker())
//	}
func ServeWorker() int {
	proto := os.Stdout
	os.Stdout = os.Stderr
	// The first process the kernel's OOM killer should pick in the agent's
	// memory cgroup is a build gone wrong, not the agent.
	_ = os.WriteFile("/proc/self/oom_score_adj", []byte("1000"), 0)
	if err := serveWorker(os.Stdin, proto); err != nil {
		fmt.Fprintf(os.Stderr, "render worker: %v\n", err)
		return 1
	}
	return 0
}

// serveWorker runs builds until the agent closes the input.
func serveWorker(in io.Reader, out io.Writer) error {
	dec, enc := gob.NewDecoder(in), gob.NewEncoder(out)
	watching := false
	for {
		var req workerRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request: %w", err)
		}
		if max := req.Limits.MaxMemory; max > 0 && !watching {
			// The collector works harder as memory nears 90% of the limit;
			// the watchdog stops the process once it cannot keep it under.
			debug.SetMemoryLimit(max / 10 * 9)
			watchMemory(max)
			watching = true
		}
		tree := &remoteFS{enc: enc, dec: dec}
		r := &Renderer{allowed: req.Allowed, limits: req.Limits}
		res, err := func() (res Result, err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic while rendering (a bug in kustomize or baton): %v", p)
				}
			}()
			return r.buildUncached(tree, req.Dir)
		}()
		if tree.err != nil {
			return tree.err // the agent is gone: nobody to answer
		}
		if err := enc.Encode(workerCall{Op: "done", Result: resultOf(res, err, req.Limits)}); err != nil {
			return err
		}
	}
}

// resultOf encodes a build's outcome for the agent.
func resultOf(res Result, err error, l Limits) *workerResult {
	if err != nil {
		wr := &workerResult{Err: err.Error()}
		var le *LimitError
		if errors.As(err, &le) {
			wr.Limit = le
		}
		for name, s := range sentinels {
			if errors.Is(err, s) {
				wr.Sentinel = name
			}
		}
		return wr
	}
	objs := make([]any, len(res.Objects))
	for i, o := range res.Objects {
		objs[i] = o.Object
	}
	b, err := json.Marshal(objs)
	if err != nil {
		return &workerResult{Err: fmt.Sprintf("encode objects: %v", err)}
	}
	if int64(len(b)) > resultCap(l) {
		return &workerResult{Limit: &LimitError{Limit: LimitMemory, File: "the rendered objects",
			Detail: fmt.Sprintf("they take %s as JSON, more than a quarter of the render memory", mib(int64(len(b)))),
			Max:    mib(l.MaxMemory)}}
	}
	return &workerResult{Objects: b, Digest: res.Digest}
}

// watchMemory exits the process with exitMemory once the memory the Go
// runtime holds (heap, stacks and its own structures, less what it has
// returned to the system) passes max. It samples every few milliseconds:
// Kustomize's fastest growth seen, an alias bomb being expanded, is about
// 150 MiB/s, so the overshoot is a few MiB.
func watchMemory(max int64) {
	go func() {
		sample := []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/released:bytes"},
		}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			metrics.Read(sample)
			held := sample[0].Value.Uint64() - sample[1].Value.Uint64()
			if held > uint64(max) {
				fmt.Fprintf(os.Stderr, "render worker: %s of memory is over the limit of %s\n", mib(int64(held)), mib(max))
				os.Exit(exitMemory)
			}
		}
	}()
}

// remoteFS is the snapshot as the worker sees it: every operation is a
// request to the agent. It implements fs.FS, fs.StatFS, fs.ReadDirFS and
// fs.ReadFileFS.
type remoteFS struct {
	mu  sync.Mutex // guards the stream: one request, one reply
	enc *gob.Encoder
	dec *gob.Decoder
	// err is the first stream failure; every later call fails with it.
	err error
}

func (r *remoteFS) call(op, name string) (workerReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return workerReply{}, r.err
	}
	var reply workerReply
	if err := r.enc.Encode(workerCall{Op: op, Path: name}); err != nil {
		r.err = fmt.Errorf("ask the agent: %w", err)
		return reply, r.err
	}
	if err := r.dec.Decode(&reply); err != nil {
		r.err = fmt.Errorf("read the agent's answer: %w", err)
		return reply, r.err
	}
	switch {
	case reply.Limit != nil:
		return reply, reply.Limit
	case reply.NotExist:
		return reply, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	case reply.Err != "":
		return reply, errors.New(reply.Err)
	}
	return reply, nil
}

func (r *remoteFS) Stat(name string) (fs.FileInfo, error) {
	reply, err := r.call("stat", name)
	if err != nil {
		return nil, err
	}
	return remoteInfo{name: path.Base(name), size: reply.Size, mode: reply.Mode, dir: reply.IsDir}, nil
}

func (r *remoteFS) ReadFile(name string) ([]byte, error) {
	reply, err := r.call("read", name)
	if err != nil {
		return nil, err
	}
	return reply.Data, nil
}

func (r *remoteFS) ReadDir(name string) ([]fs.DirEntry, error) {
	reply, err := r.call("readdir", name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(reply.Entries))
	for i, e := range reply.Entries {
		out[i] = fs.FileInfoToDirEntry(remoteInfo{name: e.Name, mode: e.Mode, dir: e.IsDir})
	}
	return out, nil
}

func (r *remoteFS) Open(name string) (fs.File, error) {
	fi, err := r.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return &remoteDir{Pages: fsdir.Pages{List: func() ([]fs.DirEntry, error) { return r.ReadDir(name) }}, name: name, info: fi}, nil
	}
	data, err := r.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &remoteFile{Reader: bytes.NewReader(data), info: fi}, nil
}

type remoteInfo struct {
	name string
	size int64
	mode fs.FileMode
	dir  bool
}

func (i remoteInfo) Name() string { return i.name }
func (i remoteInfo) Size() int64  { return i.size }
func (i remoteInfo) Mode() fs.FileMode {
	if i.dir {
		return i.mode | fs.ModeDir
	}
	return i.mode
}
func (i remoteInfo) ModTime() time.Time { return time.Time{} }
func (i remoteInfo) IsDir() bool        { return i.dir }
func (i remoteInfo) Sys() any           { return nil }

type remoteFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *remoteFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *remoteFile) Close() error               { return nil }

// remoteDir is an open folder; ReadDir lists it once.
type remoteDir struct {
	fsdir.Pages
	name string
	info fs.FileInfo
}

func (d *remoteDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *remoteDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}
func (d *remoteDir) Close() error { return nil }
