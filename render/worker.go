package render

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Why a child process: Kustomize cannot be interrupted and allocates
// without bound on inputs the checks before it cannot fully predict (a
// patch or annotation of a megabyte applied to ten thousand objects, a
// replacement copied into every field). Go has no per-goroutine memory
// limit, so the only fence that holds whatever Kustomize does is a process
// of its own: the worker watches its own heap and exits past
// Limits.MaxMemory, and the agent kills it at the deadline.
//
// The worker reads the snapshot through the agent, one request per file
// operation over its stdin and stdout (gob), so it sees exactly the files
// Kustomize asks for and the agent refuses a blob over MaxFileSize before
// inflating it. The worker runs the same build as in process: scan, the
// limits, Kustomize, validation, canonical order; it hands back the
// objects as JSON.

// WorkerEnv is the environment variable that starts an executable as a
// render worker: a program that may serve as Options.WorkerPath calls
// ServeWorker first thing in main (or TestMain) when it is set to "1".
const WorkerEnv = "BATON_RENDER_WORKER"

// IsWorker reports whether this process was started as a render worker.
func IsWorker() bool { return os.Getenv(WorkerEnv) == "1" }

// workerSlots bounds the builds running in workers at once, so that the
// render memory of the agent is at most workerSlots × Limits.MaxMemory.
const workerSlots = 2

// exitMemory is the worker's exit code when its heap passed MaxMemory.
const exitMemory = 3

// workerRequest starts a build.
type workerRequest struct {
	Dir     string
	Allowed []string
	Limits  Limits
}

// workerCall is what the worker sends: a file operation, or its result.
type workerCall struct {
	Op     string // "stat", "read", "readdir" or "done"
	Path   string
	Result *workerResult
}

// workerReply answers a file operation.
type workerReply struct {
	Err      string
	NotExist bool
	IsDir    bool
	Size     int64
	Mode     fs.FileMode
	Data     []byte
	Entries  []workerEntry
	Limit    *LimitError
}

type workerEntry struct {
	Name  string
	IsDir bool
	Mode  fs.FileMode
}

// workerResult is a finished build.
type workerResult struct {
	Objects  []byte // a JSON array
	Digest   string
	Err      string
	Sentinel string
	Limit    *LimitError
}

// sentinels are the errors a caller may test with errors.Is; they cross the
// process boundary by name.
var sentinels = map[string]error{
	"path-escape":        ErrPathEscape,
	"remote-refused":     ErrRemoteRefused,
	"remote-unsupported": ErrRemoteUnsupported,
	"plugin-refused":     ErrPluginRefused,
	"helm-refused":       ErrHelmRefused,
	"openapi-refused":    ErrOpenAPIRefused,
}

// workerError is a build error from a worker, with its sentinel.
type workerError struct {
	msg      string
	sentinel error
}

func (e *workerError) Error() string { return e.msg }
func (e *workerError) Unwrap() error { return e.sentinel }

// workerPool runs builds in worker processes, at most workerSlots at a
// time. A worker serves builds one after another, so that Kustomize's
// start-up work (its built-in schemas) is paid once per worker, not per
// build; a worker that failed, hit a limit or timed out is discarded.
type workerPool struct {
	path  string
	slots chan struct{}

	mu     sync.Mutex // guards idle and closed
	idle   []*workerProc
	closed bool
}

func newWorkerPool(path string) *workerPool {
	return &workerPool{path: path, slots: make(chan struct{}, workerSlots)}
}

// workerProc is one running worker.
type workerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *budgetReader
	enc    *gob.Encoder
	dec    *gob.Decoder
	stderr *tailBuffer
}

func (w *workerPool) start() (*workerProc, error) {
	cmd := exec.Command(w.path)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	p := &workerProc{cmd: cmd, stderr: &tailBuffer{max: 4 << 10}}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, &workerFailure{err}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, &workerFailure{err}
	}
	if err := cmd.Start(); err != nil {
		return nil, &workerFailure{fmt.Errorf("start %s: %w", w.path, err)}
	}
	p.out = &budgetReader{r: stdout}
	p.enc, p.dec = gob.NewEncoder(p.stdin), gob.NewDecoder(p.out)
	return p, nil
}

// stop ends the worker and returns how it ended.
func (p *workerProc) stop(kill bool) error {
	if kill {
		_ = p.cmd.Process.Kill()
	}
	_ = p.stdin.Close() // a worker exits at the end of its input
	return p.cmd.Wait()
}

// get returns an idle worker or starts one.
func (w *workerPool) get() (*workerProc, error) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		p := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		return p, nil
	}
	w.mu.Unlock()
	return w.start()
}

// put keeps a worker for the next build, or stops it once the pool is
// closed.
func (w *workerPool) put(p *workerProc) {
	w.mu.Lock()
	if !w.closed {
		w.idle = append(w.idle, p)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	_ = p.stop(false)
}

// close stops the idle workers; busy ones stop when their build ends.
func (w *workerPool) close() {
	w.mu.Lock()
	idle := w.idle
	w.idle, w.closed = nil, true
	w.mu.Unlock()
	for _, p := range idle {
		_ = p.stop(false)
	}
}

// build runs one build in a worker and serves its file reads from snap.
// The worker is killed when the build outlives Limits.MaxDuration.
func (w *workerPool) build(snap fs.FS, dir string, req workerRequest) (Result, error) {
	w.slots <- struct{}{}
	defer func() { <-w.slots }()
	p, err := w.get()
	if err != nil {
		return Result{}, err
	}
	var expired atomic.Bool
	var timer *time.Timer
	if d := req.Limits.MaxDuration; d > 0 {
		timer = time.AfterFunc(d, func() {
			expired.Store(true)
			_ = p.cmd.Process.Kill()
		})
	}
	p.out.reset(resultCap(req.Limits) + 64<<20)
	result, serveErr := serveBuild(snap, req, p.enc, p.dec)
	if timer != nil {
		timer.Stop()
	}
	if serveErr == nil && !expired.Load() {
		// The build ran to its end, whatever its outcome: the worker is
		// fine for the next one.
		w.put(p)
		return decodeResult(result)
	}
	// The worker died, was killed or spoke nonsense: it is not reused.
	waitErr := p.stop(true)
	var exit *exec.ExitError
	switch {
	case expired.Load():
		return Result{}, &LimitError{Limit: LimitTime, File: dir, Detail: "the build was stopped", Max: req.Limits.MaxDuration.String()}
	case errors.As(waitErr, &exit) && exit.ExitCode() == exitMemory:
		return Result{}, &LimitError{Limit: LimitMemory, File: dir, Detail: "the build's memory grew past it and the build was stopped",
			Max: mib(req.Limits.MaxMemory)}
	}
	return Result{}, &workerFailure{fmt.Errorf("%w (%v; %s)", serveErr, waitErr, p.stderr.last())}
}

// budgetReader fails reads past a byte budget, reset for each build: a
// worker cannot make the agent buffer an unbounded answer.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) reset(n int64) { b.left = n }

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("the worker's answer is over its size budget")
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

// workerFailure is a build that a worker could not run: it failed to
// start, died or broke the protocol. It says nothing about the input, so
// it is not cached.
type workerFailure struct{ err error }

func (e *workerFailure) Error() string { return "render worker: " + e.err.Error() }
func (e *workerFailure) Unwrap() error { return e.err }

// cacheable reports whether a build's outcome depends on its input alone:
// not a worker that failed, nor a build stopped at its time limit (a busy
// machine makes it slower).
func cacheable(err error) bool {
	var wf *workerFailure
	var le *LimitError
	return !errors.As(err, &wf) && !(errors.As(err, &le) && le.Limit == LimitTime)
}

// resultCap bounds the rendered objects a worker hands back: the agent
// holds them, decoded, so they must stay well below the render memory.
func resultCap(l Limits) int64 {
	if l.MaxMemory <= 0 {
		return 1 << 40
	}
	return l.MaxMemory / 4
}

// serveBuild sends the request and answers the worker's file operations
// until it sends its result. An error means the worker failed, not the
// build: a failed build is a result.
func serveBuild(snap fs.FS, req workerRequest, enc *gob.Encoder, dec *gob.Decoder) (*workerResult, error) {
	if err := enc.Encode(req); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	lim := newLimiter(req.Limits)
	for {
		var call workerCall
		if err := dec.Decode(&call); err != nil {
			return nil, fmt.Errorf("read from the worker: %w", err)
		}
		if call.Op == "done" {
			if call.Result == nil {
				return nil, errors.New("the worker sent no result")
			}
			return call.Result, nil
		}
		if err := enc.Encode(answer(snap, lim, call)); err != nil {
			return nil, fmt.Errorf("answer the worker: %w", err)
		}
	}
}

// answer performs one file operation for the worker. Reads are refused
// over MaxFileSize from the file's size, before the blob is inflated here.
func answer(snap fs.FS, lim *limiter, call workerCall) workerReply {
	fail := func(err error) workerReply {
		var le *LimitError
		if errors.As(err, &le) {
			return workerReply{Err: err.Error(), Limit: le}
		}
		return workerReply{Err: err.Error(), NotExist: errors.Is(err, fs.ErrNotExist)}
	}
	switch call.Op {
	case "stat":
		fi, err := fs.Stat(snap, call.Path)
		if err != nil {
			return fail(err)
		}
		return workerReply{IsDir: fi.IsDir(), Size: fi.Size(), Mode: fi.Mode()}
	case "read":
		fi, err := fs.Stat(snap, call.Path)
		if err != nil {
			return fail(err)
		}
		if fi.IsDir() {
			return fail(&fs.PathError{Op: "read", Path: call.Path, Err: errors.New("is a directory")})
		}
		if err := lim.checkSize(call.Path, fi.Size()); err != nil {
			return fail(err)
		}
		data, err := fs.ReadFile(snap, call.Path)
		if err != nil {
			return fail(err)
		}
		return workerReply{Size: int64(len(data)), Mode: fi.Mode(), Data: data}
	case "readdir":
		entries, err := fs.ReadDir(snap, call.Path)
		if err != nil {
			return fail(err)
		}
		out := make([]workerEntry, len(entries))
		for i, e := range entries {
			out[i] = workerEntry{Name: e.Name(), IsDir: e.IsDir(), Mode: e.Type()}
		}
		return workerReply{IsDir: true, Entries: out}
	}
	return workerReply{Err: fmt.Sprintf("unknown operation %q", call.Op)}
}

// decodeResult turns the worker's answer into a Result or an error with
// its type restored.
func decodeResult(wr *workerResult) (Result, error) {
	switch {
	case wr.Limit != nil:
		return Result{}, wr.Limit
	case wr.Err != "":
		return Result{}, &workerError{msg: wr.Err, sentinel: sentinels[wr.Sentinel]}
	}
	var raw []any
	if err := utiljson.Unmarshal(wr.Objects, &raw); err != nil {
		return Result{}, fmt.Errorf("decode the worker's objects: %w", err)
	}
	objs := make([]*unstructured.Unstructured, 0, len(raw))
	for i, o := range raw {
		m, ok := o.(map[string]any)
		if !ok {
			return Result{}, fmt.Errorf("decode the worker's objects: item %d is not an object", i)
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return Result{Objects: objs, Digest: wr.Digest}, nil
}

// tailBuffer keeps the last max bytes written: the end of a worker's
// stderr, where a crash says why.
type tailBuffer struct {
	mu  sync.Mutex // guards buf
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

// last returns the last non-empty line.
func (t *tailBuffer) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil))), "\n")
	if len(lines) == 0 || lines[len(lines)-1] == "" {
		return "no output"
	}
	return lines[len(lines)-1]
}
