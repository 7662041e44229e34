// Package realpods reads the shared corpus of pod statuses reported by real
// kubelets and schedulers (../shared/data/real-pod-statuses from the module
// root): one Pod per file, its Events when the source showed them, and a
// header naming the expected cause and what a good diagnosis mentions.
//
// The corpus is test data kept outside the repository; tests that use it
// skip, naming the folder, when it is absent.
package realpods

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// RelDir is the corpus folder relative to the module root.
const RelDir = "../shared/data/real-pod-statuses"

// Case is one file of the corpus.
type Case struct {
	// File is the file's base name, e.g. "06-crashloop-argo-minikube-docker.yaml".
	File string
	// Cause is the expected cause: oomkilled, crashloop, imagepull, probe,
	// configerror, unschedulable, evicted, or "none".
	Cause string
	// AlsoAcceptable lists a second defensible cause, if any.
	AlsoAcceptable []string
	// Mentions are literal substrings a correct diagnosis contains; empty
	// for the controls.
	Mentions []string
	// Header holds every header field by name (source, why, environment,
	// notes, ...), continuation lines joined with a space.
	Header map[string]string
	Pod    *corev1.Pod
	// RawPod is the Pod as written, for checks of which fields a kubelet
	// sets (the typed Pod shows every non-omitempty field).
	RawPod map[string]any
	// Events are the Events the source showed, Normal and Warning alike.
	Events []corev1.Event
	// Copied says how much of the pod is the source's own YAML or JSON
	// (the corpus README lists the files): CopiedWhole for a whole pod,
	// CopiedStatus for a fragment of its status, CopiedNone for a pod
	// converted from `kubectl describe` or partly rebuilt.
	Copied Copied
}

// Copied says how much of a corpus pod was copied as the source printed it.
type Copied int

const (
	CopiedNone Copied = iota
	CopiedStatus
	CopiedWhole
)

// Accepts reports whether cause is the expected one or an acceptable one;
// "none" stands for no cause.
func (c Case) Accepts(cause string) bool {
	if cause == "" {
		cause = "none"
	}
	return cause == c.Cause || slices.Contains(c.AlsoAcceptable, cause)
}

// Dir returns the corpus folder, found from the working directory by
// walking up to the module root (the folder holding go.mod).
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Clean(filepath.Join(dir, RelDir)), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Open loads the corpus for a test, skipping the test with a message naming
// the folder when it is absent, and failing it when a file does not parse.
func Open(t testing.TB) []Case {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatalf("real pod statuses: %v", err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("real pod statuses: %s is absent (the shared test data); skipping", dir)
	}
	cases, err := Load(dir)
	if err != nil {
		t.Fatalf("real pod statuses: %v", err)
	}
	return cases
}

// Load reads every NN-*.yaml file of dir, in name order.
func Load(dir string) ([]Case, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no NN-*.yaml files", dir)
	}
	slices.Sort(paths)
	copied, err := readCopied(filepath.Join(dir, "README.md"))
	if err != nil {
		return nil, err
	}
	cases := make([]Case, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		c, err := Parse(filepath.Base(p), data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		c.Copied = copied[c.File[:2]]
		cases = append(cases, c)
	}
	return cases, nil
}

// Parse reads one corpus file: the header comment, the Pod, then an
// optional EventList.
func Parse(name string, data []byte) (Case, error) {
	c := Case{File: name, Header: parseHeader(data)}
	c.Cause = c.Header["expected-cause"]
	if c.Cause == "" {
		return c, errors.New("header: no expected-cause")
	}
	if m := c.Header["expected-mention"]; m != "" && m != "(none)" {
		for _, s := range strings.Split(m, ";") {
			if s = strings.TrimSpace(s); s != "" {
				c.Mentions = append(c.Mentions, s)
			}
		}
	}
	if a := c.Header["also-acceptable"]; a != "" {
		// "configerror (the root cause is ...)": the first word is the cause.
		c.AlsoAcceptable = []string{strings.Fields(a)[0]}
	}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return c, fmt.Errorf("document %d: %w", i+1, err)
		}
		switch tm.Kind {
		case "":
			continue // only comments
		case "Pod":
			c.Pod = &corev1.Pod{}
			if err := yaml.UnmarshalStrict(doc, c.Pod); err != nil {
				return c, fmt.Errorf("pod: %w", err)
			}
			if err := yaml.Unmarshal(doc, &c.RawPod); err != nil {
				return c, fmt.Errorf("pod: %w", err)
			}
		case "EventList":
			var list corev1.EventList
			if err := yaml.UnmarshalStrict(doc, &list); err != nil {
				return c, fmt.Errorf("events: %w", err)
			}
			c.Events = list.Items
		default:
			return c, fmt.Errorf("document %d: unexpected kind %s", i+1, tm.Kind)
		}
	}
	if c.Pod == nil {
		return c, errors.New("no Pod")
	}
	return c, nil
}

// parseHeader reads the leading "# key: value" lines; a line "#   more"
// continues the previous key.
func parseHeader(data []byte) map[string]string {
	h := map[string]string{}
	last := ""
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		body := strings.TrimPrefix(line, "#")
		if strings.HasPrefix(body, "  ") && last != "" {
			h[last] += " " + strings.TrimSpace(body)
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(body), ":")
		if !ok || strings.Contains(key, " ") {
			continue
		}
		last = key
		h[key] = strings.TrimSpace(value)
	}
	return h
}

// copiedRE finds the README's sentence listing the files copied as YAML:
// "Files 06–08, 10, ... (whole pods); 01, 18, 23, 32–34 (status fragment
// only)".
var copiedRE = regexp.MustCompile(`Files ([0-9–, ]+) \(whole pods\); ([0-9–, ]+) \(status fragment only\)`)

// readCopied reads which files the README says were copied as YAML, by
// their two-digit number.
func readCopied(path string) (map[string]Copied, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := copiedRE.FindStringSubmatch(strings.Join(strings.Fields(string(data)), " "))
	if m == nil {
		return nil, fmt.Errorf("%s: no list of the files copied as YAML", path)
	}
	out := map[string]Copied{}
	for i, how := range []Copied{CopiedWhole, CopiedStatus} {
		for _, item := range strings.Split(m[i+1], ",") {
			lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "–")
			if !isRange {
				hi = lo
			}
			a, errA := strconv.Atoi(lo)
			b, errB := strconv.Atoi(hi)
			if errA != nil || errB != nil || a > b {
				return nil, fmt.Errorf("%s: bad file number %q in the list of files copied as YAML", path, item)
			}
			for n := a; n <= b; n++ {
				out[fmt.Sprintf("%02d", n)] = how
			}
		}
	}
	return out, nil
}
