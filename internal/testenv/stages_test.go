package testenv_test

import (
	"context"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/baton-gitops/baton/internal/realpods"
	"github.com/baton-gitops/baton/internal/testenv"
)

// TestStagesLookReal checks kwok's pod stages against the shared corpus of
// pod statuses reported by real kubelets: a pod each stage makes must show
// what real pods in the same state show. For each container state the
// stage must set no field that no real kubelet in the corpus sets, and
// every field that all whole real pods in that state have; give a last
// termination (reason, exit code) real pods have; and word its messages as
// real ones are worded (the same text once names, images, UIDs, durations
// and numbers are taken out). The same holds for the pod's phase, status
// fields and conditions, and for its Warning events (same reason; the same
// words, or the same words up to a probe's output).
func TestStagesLookReal(t *testing.T) {
	t.Parallel()
	real := newRealShapes(t, realpods.Open(t))
	ns := env.Namespace(t)
	dyn := env.Dynamic(t)
	events := env.Clientset(t).CoreV1().Events(ns)
	stages := []struct {
		failure string
		states  []string // the container states the stages go through, in order
	}{
		{"", []string{"running:ready"}},
		{testenv.FailCrashLoop, []string{"waiting:CrashLoopBackOff"}},
		{testenv.FailOOMKilled, []string{"waiting:CrashLoopBackOff"}},
		{testenv.FailImagePull, []string{"waiting:ErrImagePull", "waiting:ImagePullBackOff"}},
		{testenv.FailNotReady, []string{"running:unready"}},
	}
	for _, st := range stages {
		name := st.failure
		if name == "" {
			name = "ready"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "app", Image: "registry.example/app:1.0"},
					{Name: "sidecar", Image: "registry.example/sidecar:2.1"},
				}},
			}
			if st.failure != "" {
				pod.Labels[testenv.FailureLabel] = st.failure
			}
			snapshots := watchStates(t, dyn, ns, pod, st.states)
			for _, state := range st.states {
				t.Run(state, func(t *testing.T) { real.checkPod(t, state, snapshots[state]) })
			}
			if st.failure != "" {
				real.checkEvents(t, podWarnings(t, events, name, len(st.states)), snapshots[st.states[0]])
			}
		})
	}
}

var gvrPods = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// watchStates creates pod and returns it as the apiserver serves it (raw
// JSON, not typed: which fields are set is the point) the first time its
// first container reaches each state.
func watchStates(t *testing.T, dyn dynamic.Interface, ns string, pod *corev1.Pod, states []string) map[string]map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pods := dyn.Resource(gvrPods).Namespace(ns)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", pod.Name).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]any{}
	for ev := range w.ResultChan() {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		statuses, _, _ := unstructured.NestedSlice(u.Object, "status", "containerStatuses")
		if len(statuses) == 0 {
			continue
		}
		if s := stateKey(statuses[0].(map[string]any)); slices.Contains(states, s) && seen[s] == nil {
			seen[s] = u.Object
		}
		if len(seen) == len(states) {
			return seen
		}
	}
	t.Fatalf("pod %s reached %d of the states %v before the deadline", pod.Name, len(seen), states)
	return nil
}

// podWarnings waits for the Warning events kwok's stages emit about the
// pod (one per stage; they are written after the status) and returns them.
func podWarnings(t *testing.T, events typedcorev1.EventInterface, name string, want int) []corev1.Event {
	t.Helper()
	var got []corev1.Event
	sel := fields.Set{"involvedObject.kind": "Pod", "involvedObject.name": name, "type": corev1.EventTypeWarning}.AsSelector().String()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := events.List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return false, nil
		}
		got = list.Items
		return len(got) >= want, nil
	})
	if err != nil {
		t.Fatalf("pod %s: %d Warning events, want %d: %v", name, len(got), want, err)
	}
	return got
}

// stateKey names a container status's state: "waiting:<reason>",
// "running:ready", "running:unready" or "terminated:<reason>".
func stateKey(cs map[string]any) string {
	state, _ := cs["state"].(map[string]any)
	switch {
	case state["waiting"] != nil:
		r, _, _ := unstructured.NestedString(state, "waiting", "reason")
		return "waiting:" + r
	case state["running"] != nil:
		if ready, _ := cs["ready"].(bool); ready {
			return "running:ready"
		}
		return "running:unready"
	case state["terminated"] != nil:
		r, _, _ := unstructured.NestedString(state, "terminated", "reason")
		return "terminated:" + r
	}
	return "none"
}

// realContainer is a container status from the corpus.
type realContainer struct {
	file  string
	whole bool // the whole pod was copied as YAML
	paths map[string]bool
	cs    map[string]any
	pod   map[string]any // the pod's status
}

// realShapes is what the corpus says real pods look like.
type realShapes struct {
	// containerFields and podFields are every field path real kubelets set,
	// in files copied as YAML.
	containerFields, podFields map[string]bool
	byState                    map[string][]realContainer
	// messages are the shapes of real messages by where they are found:
	// "waiting:<reason>", "condition:<type>", "event:<reason>".
	messages map[string]map[string]bool
	// conditions are the real type/status/reason triples of pod conditions.
	conditions map[string]bool
}

func newRealShapes(t *testing.T, cases []realpods.Case) *realShapes {
	t.Helper()
	r := &realShapes{containerFields: map[string]bool{}, podFields: map[string]bool{}, byState: map[string][]realContainer{},
		messages: map[string]map[string]bool{}, conditions: map[string]bool{}}
	for _, c := range cases {
		names := namesOf(c.Pod)
		for _, e := range c.Events {
			if e.Type != corev1.EventTypeWarning {
				continue
			}
			r.addMessage("event:"+e.Reason, names.shape(e.Message))
			// The kubelet's pull error is also the ErrImagePull waiting
			// message; containerd's and CRI-O's show only in this event.
			if rest, ok := strings.CutPrefix(e.Message, "Failed to pull image "); ok {
				if _, msg, ok := strings.Cut(rest, `": `); ok {
					r.addMessage("waiting:ErrImagePull", names.shape(msg))
				}
			}
		}
		if c.Copied == realpods.CopiedNone {
			continue
		}
		status, _ := c.RawPod["status"].(map[string]any)
		for _, cond := range c.Pod.Status.Conditions {
			if cond.Reason != "" || cond.Message != "" {
				r.conditions[string(cond.Type)+"/"+string(cond.Status)+"/"+cond.Reason] = true
			}
			if cond.Message != "" {
				r.addMessage("condition:"+string(cond.Type), names.shape(cond.Message))
			}
		}
		for p := range podPaths(status) {
			r.podFields[p] = true
		}
		for _, field := range []string{"containerStatuses", "initContainerStatuses"} {
			list, _ := status[field].([]any)
			for _, item := range list {
				cs := item.(map[string]any)
				paths := leafPaths(cs, "")
				for p := range paths {
					r.containerFields[p] = true
				}
				key := stateKey(cs)
				r.byState[key] = append(r.byState[key], realContainer{file: c.File, whole: c.Copied == realpods.CopiedWhole, paths: paths, cs: cs, pod: status})
				if msg, _, _ := unstructured.NestedString(cs, "state", "waiting", "message"); msg != "" {
					r.addMessage(key, names.shape(msg))
				}
			}
		}
	}
	return r
}

func (r *realShapes) addMessage(where, shape string) {
	if r.messages[where] == nil {
		r.messages[where] = map[string]bool{}
	}
	r.messages[where][shape] = true
}

// checkPod compares a pod made by a stage, its containers in state, with
// the real pods whose containers are in the same state.
func (r *realShapes) checkPod(t *testing.T, state string, pod map[string]any) {
	t.Helper()
	refs := r.byState[state]
	if len(refs) == 0 {
		t.Fatalf("no real container in state %s in the corpus to compare with", state)
	}
	var typed corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pod, &typed); err != nil {
		t.Fatal(err)
	}
	names := namesOf(&typed)
	status := pod["status"].(map[string]any)
	var whole []realContainer
	for _, ref := range refs {
		if ref.whole {
			whole = append(whole, ref)
		}
	}

	for _, item := range status["containerStatuses"].([]any) {
		cs := item.(map[string]any)
		paths := leafPaths(cs, "")
		for _, p := range sortedKeys(paths) {
			if !r.containerFields[p] {
				t.Errorf("container %s sets %s, which no real kubelet in the corpus sets", cs["name"], p)
			}
		}
		for _, p := range common(whole, func(c realContainer) map[string]bool { return c.paths }) {
			if !paths[p] {
				t.Errorf("container %s lacks %s, which every whole real pod in state %s has (%s)", cs["name"], p, state, files(whole))
			}
		}
		if reason, _, _ := unstructured.NestedString(cs, "lastState", "terminated", "reason"); reason != "" {
			code, _, _ := unstructured.NestedInt64(cs, "lastState", "terminated", "exitCode")
			ok := false
			for _, ref := range refs {
				rr, _, _ := unstructured.NestedString(ref.cs, "lastState", "terminated", "reason")
				rc, _, _ := unstructured.NestedFieldNoCopy(ref.cs, "lastState", "terminated", "exitCode")
				ok = ok || (rr == reason && toInt64(rc) == code)
			}
			if !ok {
				t.Errorf("container %s last terminated %s with exit %d: no real container in state %s did", cs["name"], reason, code, state)
			}
		}
		if msg, _, _ := unstructured.NestedString(cs, "state", "waiting", "message"); msg != "" {
			r.checkMessage(t, state, names.shape(msg))
		}
	}

	phases := map[string]bool{}
	for _, ref := range whole {
		if p, ok := ref.pod["phase"].(string); ok {
			phases[p] = true
		}
	}
	if phase := status["phase"].(string); len(phases) > 0 && !phases[phase] {
		t.Errorf("phase %s; real pods in state %s are %v", phase, state, sortedKeys(phases))
	}
	paths := podPaths(status)
	for _, p := range sortedKeys(paths) {
		if !r.podFields[p] {
			t.Errorf("pod status sets %s, which no real pod in the corpus has", p)
		}
	}
	for _, p := range common(whole, func(c realContainer) map[string]bool { return podPaths(c.pod) }) {
		if !paths[p] {
			t.Errorf("pod status lacks %s, which every whole real pod in state %s has (%s)", p, state, files(whole))
		}
	}
	types := map[string]bool{}
	for _, c := range typed.Status.Conditions {
		types[string(c.Type)] = true
		if c.Reason != "" && !r.conditions[string(c.Type)+"/"+string(c.Status)+"/"+c.Reason] {
			t.Errorf("condition %s=%s with reason %s: no real pod has it", c.Type, c.Status, c.Reason)
		}
		if c.Message != "" {
			r.checkMessage(t, "condition:"+string(c.Type), names.shape(c.Message))
		}
	}
	for _, c := range common(whole, func(c realContainer) map[string]bool { return conditionTypes(c.pod) }) {
		if !types[c] {
			t.Errorf("no %s condition, which every whole real pod in state %s has (%s)", c, state, files(whole))
		}
	}
}

// checkEvents compares the stages' Warning events with real ones.
func (r *realShapes) checkEvents(t *testing.T, events []corev1.Event, pod map[string]any) {
	t.Helper()
	var typed corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pod, &typed); err != nil {
		t.Fatal(err)
	}
	names := namesOf(&typed)
	for _, e := range events {
		shapes := r.messages["event:"+e.Reason]
		if len(shapes) == 0 {
			t.Errorf("event %s %q: no real Warning event has reason %s", e.Reason, e.Message, e.Reason)
			continue
		}
		shape := names.shape(e.Message)
		if shapes[shape] {
			continue
		}
		// A probe's output varies: "Readiness probe failed: <output>".
		head, _, found := strings.Cut(shape, ":")
		ok := false
		for s := range shapes {
			h, _, f := strings.Cut(s, ":")
			ok = ok || (found && f && h == head)
		}
		if !ok {
			t.Errorf("event %s %q is worded as no real one is: %q", e.Reason, e.Message, sortedKeys(shapes))
		}
	}
}

func (r *realShapes) checkMessage(t *testing.T, where, shape string) {
	t.Helper()
	if real := r.messages[where]; len(real) > 0 && !real[shape] {
		t.Errorf("%s message %q is worded as no real one is: %q", where, shape, sortedKeys(real))
	}
}

// names are the variable parts of one pod's messages.
type names struct {
	ref, uid, pod, namespace string
	images, containers       []string
}

func namesOf(p *corev1.Pod) names {
	n := names{uid: string(p.UID), pod: p.Name, namespace: p.Namespace}
	n.ref = p.Name + "_" + p.Namespace + "(" + n.uid + ")"
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		n.containers = append(n.containers, c.Name)
		n.images = append(n.images, c.Image)
	}
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		n.images = append(n.images, cs.Image)
	}
	// Longest first, so that "api:1.0" is not half-replaced by "api".
	longestFirst := func(a, b string) int { return len(b) - len(a) }
	slices.SortFunc(n.images, longestFirst)
	slices.SortFunc(n.containers, longestFirst)
	return n
}

var (
	durationRE = regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(ms|s)\b`)
	numberRE   = regexp.MustCompile(`\d+`)
)

// shape takes the variable parts out of a message: the pod's reference
// ("name_namespace(uid)"), UID, images, container, pod and namespace names,
// durations and numbers.
func (n names) shape(msg string) string {
	replace := func(s, old, with string) string {
		if old == "" {
			return s
		}
		return strings.ReplaceAll(s, old, with)
	}
	if n.uid != "" {
		msg = replace(msg, n.ref, "<pod>")
		msg = replace(msg, n.uid, "<uid>")
	}
	for _, img := range n.images {
		if img == "" {
			continue
		}
		for _, form := range []string{"docker.io/library/" + img, "docker.io/" + img, img} {
			msg = replace(msg, form, "<image>")
		}
	}
	for _, tok := range slices.Concat(n.containers, []string{n.pod, n.namespace}) {
		msg = replaceToken(msg, tok, "<name>")
	}
	msg = durationRE.ReplaceAllString(msg, "<duration>")
	return numberRE.ReplaceAllString(msg, "<n>")
}

// replaceToken replaces tok where it stands as a whole name, not inside a
// longer one.
func replaceToken(s, tok, with string) string {
	if tok == "" || tok == "unknown" {
		return s // the corpus's placeholder for a name the source did not show
	}
	re := regexp.MustCompile(`(^|[^A-Za-z0-9._/<-])` + regexp.QuoteMeta(tok) + `($|[^A-Za-z0-9._/>-])`)
	for {
		out := re.ReplaceAllString(s, "${1}"+with+"${2}")
		if out == s {
			return out
		}
		s = out
	}
}

// leafPaths lists the paths of the set fields of m ("state.waiting.reason"),
// list items merged.
func leafPaths(m map[string]any, prefix string) map[string]bool {
	out := map[string]bool{}
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, child := range x {
				walk(child, strings.TrimPrefix(path+"."+k, "."))
			}
		case []any:
			for _, child := range x {
				walk(child, path)
			}
		case nil:
		default:
			out[path] = true
		}
	}
	walk(m, prefix)
	return out
}

// podPaths lists a pod status's field paths outside its container statuses
// and conditions, which are compared on their own.
func podPaths(status map[string]any) map[string]bool {
	out := map[string]bool{}
	for k, v := range status {
		switch k {
		case "containerStatuses", "initContainerStatuses", "conditions":
			continue
		}
		for p := range leafPaths(map[string]any{k: v}, "") {
			out[p] = true
		}
	}
	return out
}

func conditionTypes(status map[string]any) map[string]bool {
	out := map[string]bool{}
	list, _ := status["conditions"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out[m["type"].(string)] = true
		}
	}
	return out
}

// common lists what every ref has.
func common(refs []realContainer, of func(realContainer) map[string]bool) []string {
	if len(refs) == 0 {
		return nil
	}
	var out []string
	for k := range of(refs[0]) {
		all := true
		for _, r := range refs[1:] {
			all = all && of(r)[k]
		}
		if all {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func files(refs []realContainer) string {
	var out []string
	for _, r := range refs {
		if !slices.Contains(out, r.file) {
			out = append(out, r.file)
		}
	}
	return strings.Join(out, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func toInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return -1
}
