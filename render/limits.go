package render

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Limits bound what one render may read and produce, so that a hostile
// commit (a YAML alias bomb, a huge blob, an exponential fan-out of
// kustomizations) fails its own environment with a *LimitError instead of
// exhausting the agent. Zero values take the defaults below; a negative
// value turns a limit off (for tests and benchmarks only).
type Limits struct {
	// MaxFileSize bounds one file a render reads (a blob of the commit):
	// checked from the file's size before its content is read.
	// Default DefaultMaxFileSize.
	MaxFileSize int64
	// MaxObjects bounds the objects one render produces. It is checked
	// twice: before Kustomize runs, against a count of the resource files
	// and generators each kustomization reaches times the number of ways it
	// is reached (an exponential fan-out of bases is refused without being
	// built), and after the build, against the real count.
	// Default DefaultMaxObjects.
	MaxObjects int
	// MaxAliasNodes bounds the YAML nodes that the aliases of one file
	// expand to. Kustomize replaces every alias by a copy of its anchor, so
	// a kilobyte of nested aliases becomes gigabytes; files are counted,
	// without expanding them, before Kustomize reads them.
	// Default DefaultMaxAliasNodes.
	MaxAliasNodes int
	// MaxMemory bounds the memory the Go runtime of a worker process holds
	// (Options.WorkerPath: heap, stacks and runtime structures), which is
	// stopped when it grows past it; the collector works harder from 90% of
	// it. The rendered result handed back may be at most a quarter of it.
	// Without a worker it is not enforced. Default DefaultMaxMemory.
	MaxMemory int64
	// MaxDuration bounds one build in a worker process, which is killed
	// past it. Without a worker it is not enforced (Kustomize cannot be
	// interrupted in process). Default DefaultMaxDuration.
	MaxDuration time.Duration
}

// Default limits: generous for real environments (a vendored operator
// bundle is a few MiB; a large environment a few thousand objects; anchors
// in Kubernetes manifests a few hundred nodes), far below what hurts.
const (
	DefaultMaxFileSize   = 8 << 20
	DefaultMaxObjects    = 10_000
	DefaultMaxAliasNodes = 10_000
	DefaultMaxMemory     = 256 << 20
	DefaultMaxDuration   = 5 * time.Minute
)

// withDefaults fills zero values.
func (l Limits) withDefaults() Limits {
	l.MaxFileSize = cmp.Or(l.MaxFileSize, DefaultMaxFileSize)
	l.MaxObjects = cmp.Or(l.MaxObjects, DefaultMaxObjects)
	l.MaxAliasNodes = cmp.Or(l.MaxAliasNodes, DefaultMaxAliasNodes)
	l.MaxMemory = cmp.Or(l.MaxMemory, DefaultMaxMemory)
	l.MaxDuration = cmp.Or(l.MaxDuration, DefaultMaxDuration)
	return l
}

// The limits a LimitError names (LimitError.Limit), fixed so that callers
// can count them in a metric label.
const (
	LimitFileSize = "file-size"
	LimitObjects  = "objects"
	LimitAliases  = "aliases"
	LimitMemory   = "memory"
	LimitTime     = "time"
)

// limitSettings names the baton.yaml field of each limit, for messages.
var limitSettings = map[string]string{
	LimitFileSize: "limits.maxFileSize",
	LimitObjects:  "limits.maxObjects",
	LimitAliases:  "limits.maxAliasNodes",
	LimitMemory:   "limits.renderMemory",
	LimitTime:     "limits.renderTimeout",
}

// LimitError is a render stopped by one of its Limits. Callers find it with
// errors.As.
type LimitError struct {
	// Limit is one of the Limit* constants.
	Limit string
	// File is the file at fault (a tree path); for the memory limit, the
	// folder being rendered.
	File string
	// Detail says what was found, e.g. "20.0 MiB".
	Detail string
	// Max is the limit's value as the message shows it, e.g. "8.0 MiB".
	Max string
}

// Error reads "file: detail: over the <limit> limit of <max> (setting)".
func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %s: over the %s limit of %s (%s)", e.File, e.Detail, limitName(e.Limit), e.Max, limitSettings[e.Limit])
}

func limitName(l string) string {
	switch l {
	case LimitFileSize:
		return "file size"
	case LimitObjects:
		return "object count"
	case LimitAliases:
		return "YAML alias expansion"
	case LimitMemory:
		return "render memory"
	case LimitTime:
		return "render time"
	}
	return l
}

// mib formats a byte count for messages: in MiB, or KiB or bytes when
// smaller.
func mib(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sizes formats a size and its limit, in bytes when rounding would make
// them look equal.
func sizes(n, max int64) (string, string) {
	if a, b := mib(n), mib(max); a != b {
		return a, b
	}
	return fmt.Sprintf("%d bytes", n), fmt.Sprintf("%d bytes", max)
}

// limiter applies the file limits to every read of one build: the scan's
// and Kustomize's alike, so that Kustomize never sees a file over them. It
// keeps the first LimitError, because Kustomize wraps (and sometimes
// rewords) the errors of its reads.
type limiter struct {
	limits Limits

	mu sync.Mutex // guards first and checked
	// first is the first limit error of the build.
	first *LimitError
	// checked remembers files whose aliases were counted: a fan-out reads
	// the same file many times.
	checked map[string]bool
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: l, checked: map[string]bool{}}
}

// fail records e as the build's limit error (the first one wins) and
// returns it.
func (l *limiter) fail(e *LimitError) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		l.first = e
	}
	return e
}

// err returns the first limit error of the build, or nil.
func (l *limiter) err() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == nil {
		return nil
	}
	return l.first
}

// checkSize refuses a file larger than MaxFileSize before it is read.
func (l *limiter) checkSize(p string, size int64) error {
	if l == nil || l.limits.MaxFileSize < 0 || size <= l.limits.MaxFileSize {
		return nil
	}
	got, max := sizes(size, l.limits.MaxFileSize)
	return l.fail(&LimitError{Limit: LimitFileSize, File: p, Detail: "the file is " + got, Max: max})
}

// checkContent refuses a file whose aliases expand past MaxAliasNodes.
func (l *limiter) checkContent(p string, data []byte) error {
	if l == nil || l.limits.MaxAliasNodes < 0 {
		return nil
	}
	// An alias needs an anchor: most manifests have none and cost nothing.
	if bytes.IndexByte(data, '&') < 0 || bytes.IndexByte(data, '*') < 0 {
		return nil
	}
	l.mu.Lock()
	done := l.checked[p]
	l.mu.Unlock()
	if done {
		return nil
	}
	added, err := aliasExpansion(data, int64(l.limits.MaxAliasNodes))
	if err != nil {
		// Not YAML: Kustomize reports its own syntax error, or the file is a
		// generator's raw data, which Kustomize does not parse as YAML.
		added = 0
	}
	if added > int64(l.limits.MaxAliasNodes) {
		return l.fail(&LimitError{Limit: LimitAliases, File: p,
			Detail: fmt.Sprintf("its aliases expand to more than %d YAML nodes", l.limits.MaxAliasNodes),
			Max:    fmt.Sprintf("%d nodes", l.limits.MaxAliasNodes)})
	}
	l.mu.Lock()
	l.checked[p] = true
	l.mu.Unlock()
	return nil
}

// aliasExpansion counts the nodes that replacing every alias of a YAML
// stream by a copy of its anchor would add, without doing it: each node's
// expanded size is computed once (memoised by node), so the count is linear
// in the file however deep the aliases nest. It stops counting past max.
func aliasExpansion(data []byte, max int64) (int64, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var added int64
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return added, nil
		}
		if err != nil {
			return added, err
		}
		sizes := map[*yaml.Node]int64{}
		var size func(n *yaml.Node, depth int) int64
		size = func(n *yaml.Node, depth int) int64 {
			if n == nil || depth > 10_000 {
				return 0
			}
			if s, ok := sizes[n]; ok {
				return s
			}
			sizes[n] = 0 // a cycle (an alias inside its own anchor) adds nothing more
			var s int64 = 1
			if n.Kind == yaml.AliasNode {
				s = size(n.Alias, depth+1)
				added = saturatingAdd(added, s)
			} else {
				for _, c := range n.Content {
					s = saturatingAdd(s, size(c, depth+1))
				}
			}
			sizes[n] = s
			return s
		}
		size(&doc, 0)
		if added > max {
			return added, nil
		}
	}
}

// saturatingAdd adds without overflowing: counts of an exponential fan-out
// or alias nesting can exceed int64.
func saturatingAdd(a, b int64) int64 {
	const ceiling = int64(1) << 60
	if a >= ceiling-b {
		return ceiling
	}
	return a + b
}

func saturatingMul(a, b int64) int64 {
	const ceiling = int64(1) << 60
	if a != 0 && b > ceiling/a {
		return ceiling
	}
	return a * b
}

// estimateObjects is a lower bound of the objects a build yields, known
// before Kustomize runs: every resource file and generator of a
// kustomization yields at least one object each time the kustomization is
// reached, and a folder listed by two parents is built twice (under a
// different namePrefix, say). The number of ways each folder is reached is
// counted over the graph in topological order, in time linear in the graph
// however many paths there are. most names the folder reached most often.
// A cycle yields 0: Kustomize refuses it with its own error.
func (g *graph) estimateObjects(root string) (total int64, most string, times int64) {
	var order []string        // postorder: children before parents
	state := map[string]int{} // 1 visiting, 2 done
	cycle := false
	var visit func(dir string)
	visit = func(dir string) {
		switch state[dir] {
		case 1:
			cycle = true
			return
		case 2:
			return
		}
		state[dir] = 1
		for _, c := range g.children[dir] {
			visit(c)
		}
		state[dir] = 2
		order = append(order, dir)
	}
	visit(root)
	if cycle {
		return 0, "", 0
	}
	paths := map[string]int64{root: 1}
	for i := len(order) - 1; i >= 0; i-- {
		dir := order[i]
		for _, c := range g.children[dir] {
			paths[c] = saturatingAdd(paths[c], paths[dir])
		}
		total = saturatingAdd(total, saturatingMul(paths[dir], int64(g.yields[dir])))
		if paths[dir] > times {
			most, times = dir, paths[dir]
		}
	}
	return total, most, times
}

// checkFanOut refuses, before Kustomize runs, a tree whose kustomizations
// would yield more objects than MaxObjects (see estimateObjects).
func checkFanOut(g *graph, dir, kfile string, l Limits) error {
	if l.MaxObjects < 0 {
		return nil
	}
	total, most, times := g.estimateObjects(dir)
	if total <= int64(l.MaxObjects) {
		return nil
	}
	detail := fmt.Sprintf("the kustomizations it reaches would render at least %s objects", countString(total))
	if times > 1 {
		detail += fmt.Sprintf(" (%s is reached %s times)", most, countString(times))
	}
	return &LimitError{Limit: LimitObjects, File: joinTree(dir, kustomizationName(kfile)), Detail: detail,
		Max: fmt.Sprintf("%d objects", l.MaxObjects)}
}

// kustomizationName is the file name of a folder's kustomization: its own,
// or the one generated for a plain folder.
func kustomizationName(kfile string) string {
	if kfile == "" {
		return "kustomization.yaml"
	}
	return kfile
}

func countString(n int64) string {
	if n >= 1<<60 {
		return "2^60"
	}
	return fmt.Sprintf("%d", n)
}
