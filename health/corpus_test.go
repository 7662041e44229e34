package health

import (
	"fmt"
	"strings"
	"testing"

	"github.com/baton-gitops/baton/internal/realpods"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestDiagnoseRealPods runs Diagnose over the shared corpus of pod statuses
// reported by real kubelets (docker, containerd, CRI-O; Kubernetes 1.12 to
// 1.34): every file must get its expected cause and a message holding each
// expected mention, on one line. It logs the count named as expected.
func TestDiagnoseRealPods(t *testing.T) {
	cases := realpods.Open(t)
	causes, named := 0, 0
	for _, c := range cases {
		ok := t.Run(c.File, func(t *testing.T) {
			obj := podObject(t, c.Pod)
			d := Diagnose(obj, Compute(obj), Evidence{Pods: []corev1.Pod{*c.Pod}, Events: c.Events}, DiagnoseOptions{})
			if c.Accepts(string(d.Cause)) {
				causes++
			}
			checkRealDiagnosis(t, c, d, true)
		})
		if ok {
			named++
		}
	}
	t.Logf("real pod statuses: cause named for %d/%d, cause and every mention for %d/%d", causes, len(cases), named, len(cases))
}

// TestDiagnoseRealPodsOfWorkloads runs the corpus again with each pod as
// the pod of a Deployment (through its ReplicaSet), a StatefulSet, a
// DaemonSet and a Job, whose status counts it not ready (or ready, for
// the controls): the workload's diagnosis must name the same cause and
// mentions. A Job's pods need not be Ready, so a probe failure is no cause
// for a Job.
func TestDiagnoseRealPodsOfWorkloads(t *testing.T) {
	cases := realpods.Open(t)
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet", "Job"} {
		t.Run(kind, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.File, func(t *testing.T) {
					obj, ev := workloadOf(t, kind, c)
					d := Diagnose(obj, Compute(obj), ev, DiagnoseOptions{})
					if kind == "Job" && c.Cause == string(ProbeFailing) {
						if d.Cause != NoCause {
							t.Errorf("cause %q for a Job's unready pod, want none: %s", d.Cause, d.Message)
						}
						return
					}
					checkRealDiagnosis(t, c, d, false)
					if c.Cause != "none" && !strings.Contains(d.Message, "pod "+c.Pod.Name+": ") {
						t.Errorf("message does not name the pod: %s", d.Message)
					}
				})
			}
		})
	}
}

// TestRealPodsThroughTheCache: what the agent diagnoses comes from trimmed
// caches and skips calm evidence, so every real kubelet status, as the pod
// of each kind of workload, must diagnose the same through them as from
// the status the kubelet wrote.
func TestRealPodsThroughTheCache(t *testing.T) {
	cases := realpods.Open(t)
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet", "Job"} {
		for _, c := range cases {
			t.Run(kind+"/"+c.File, func(t *testing.T) {
				obj, ev := workloadOf(t, kind, c)
				want := Diagnose(obj, Compute(obj), ev, DiagnoseOptions{})
				tobj, tev := trimmed(t, obj, ev)
				if got := Diagnose(tobj, Compute(tobj), tev, DiagnoseOptions{}); got != want {
					t.Errorf("through the trimmed caches: %+v\nfrom the kubelet's status: %+v", got, want)
				}
				checkCalmHidesNoCause(t, obj, ev, DiagnoseOptions{})
			})
		}
	}
}

// checkRealDiagnosis checks a diagnosis against a corpus file's header.
func checkRealDiagnosis(t *testing.T, c realpods.Case, d Diagnosis, verbose bool) {
	t.Helper()
	if !c.Accepts(string(d.Cause)) {
		t.Errorf("cause %q, want %q (%s)\nmessage: %s", d.Cause, c.Cause, c.Header["why"], d.Message)
	}
	for _, m := range c.Mentions {
		if !strings.Contains(d.Message, m) {
			t.Errorf("message does not mention %q: %s", m, d.Message)
		}
	}
	if strings.ContainsAny(d.Message, "\n\r\t") || strings.Contains(d.Message, "  ") {
		t.Errorf("message is not one clean line: %q", d.Message)
	}
	if len([]rune(d.Message)) > maxMessage {
		t.Errorf("message of %d runes, want at most %d", len([]rune(d.Message)), maxMessage)
	}
	if verbose && !t.Failed() {
		t.Logf("%s: %s", d.Cause, d.Message)
	}
}

// podObject converts a typed pod into the unstructured form Compute reads.
func podObject(t testing.TB, pod *corev1.Pod) *unstructured.Unstructured {
	t.Helper()
	u := toUnstructured(t, pod)
	u.SetAPIVersion("v1")
	u.SetKind("Pod")
	return u
}

func toUnstructured(t testing.TB, obj any) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

// workloadOf makes a one-replica workload of kind whose status counts the
// corpus pod: ready when the pod is Ready, else not, and for a Job, failed
// when the pod failed. It returns the workload and its evidence.
func workloadOf(t *testing.T, kind string, c realpods.Case) (*unstructured.Unstructured, Evidence) {
	t.Helper()
	ready := 0
	if podReady(c.Pod) {
		ready = 1
	}
	failed := 0
	if c.Pod.Status.Phase == corev1.PodFailed {
		failed = 1
	}
	ns := c.Pod.Namespace
	if ns == "" {
		ns = "default"
	}
	// A pod of a ReplicaSet names its Deployment: "web-7d9f8" of "web".
	deployment, rs := "app", "app-7d9f8"
	if ref := metav1.GetControllerOf(c.Pod); ref != nil && ref.Kind == "ReplicaSet" {
		if i := strings.LastIndexByte(ref.Name, '-'); i > 0 {
			deployment, rs = ref.Name[:i], ref.Name
		}
	}
	var manifest string
	switch kind {
	case "Deployment":
		manifest = fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: %s, generation: 2}
spec: {replicas: 1, selector: {matchLabels: {app: app}}}
status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: %d, availableReplicas: %[3]d}
`, deployment, ns, ready)
	case "StatefulSet":
		manifest = fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: app, namespace: %s, generation: 2}
spec: {replicas: 1, selector: {matchLabels: {app: app}}}
status: {observedGeneration: 2, replicas: 1, updatedReplicas: 1, readyReplicas: %d, availableReplicas: %[2]d,
  currentRevision: app-1, updateRevision: app-1}
`, ns, ready)
	case "DaemonSet":
		manifest = fmt.Sprintf(`
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: app, namespace: %s, generation: 2}
spec: {selector: {matchLabels: {app: app}}}
status: {observedGeneration: 2, desiredNumberScheduled: 1, currentNumberScheduled: 1, updatedNumberScheduled: 1,
  numberReady: %d, numberAvailable: %[2]d}
`, ns, ready)
	case "Job":
		manifest = fmt.Sprintf(`
apiVersion: batch/v1
kind: Job
metadata: {name: app, namespace: %s, generation: 1}
spec: {backoffLimit: 6, template: {spec: {containers: [{name: app, image: app}]}}}
status: {active: %d, failed: %d, ready: %d}
`, ns, 1-failed, failed, ready)
	}
	obj, err := decodeYAML([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	ev := Evidence{Pods: []corev1.Pod{*c.Pod}, Events: c.Events}
	if kind == "Deployment" {
		ev.ReplicaSet = &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: rs, Namespace: ns},
			Spec:       appsv1.ReplicaSetSpec{Replicas: new(int32(1))},
			Status:     appsv1.ReplicaSetStatus{Replicas: 1, ReadyReplicas: int32(ready), AvailableReplicas: int32(ready)},
		}
	}
	return obj, ev
}
