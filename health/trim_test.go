package health

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// diagnoseFixtures lists testdata/diagnose by name.
func diagnoseFixtures(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "diagnose", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no diagnose fixtures: %v", err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, "diagnose/"+strings.TrimSuffix(filepath.Base(p), ".yaml"))
	}
	return names
}

// fixtureNow is a diagnosis time that makes the recent-OOM fixture recent.
func fixtureNow(ev Evidence) time.Time {
	for _, p := range ev.Pods {
		for _, cs := range p.Status.ContainerStatuses {
			if term := cs.LastTerminationState.Terminated; term != nil {
				return term.FinishedAt.Add(time.Minute)
			}
		}
	}
	return time.Time{}
}

// TestCalmHidesNoCause: leaving the pods and events out of a diagnosis
// when the evidence is calm changes nothing.
func TestCalmHidesNoCause(t *testing.T) {
	for _, name := range diagnoseFixtures(t) {
		t.Run(name, func(t *testing.T) {
			obj, ev := loadCase(t, name)
			checkCalmHidesNoCause(t, obj, ev, DiagnoseOptions{Now: fixtureNow(ev)})
		})
	}
	// A rollout on its way: a pod being created, one pending unscheduled
	// yet, one ready.
	obj, ev := loadCase(t, "diagnose/deployment-crashloop")
	ev.Events = nil
	ready := corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "crashloop", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
	creating := corev1.PodStatus{Phase: corev1.PodPending,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "crashloop", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}
	ev.Pods[0].Status, ev.Pods[1].Status, ev.Pods[2].Status = ready, creating, corev1.PodStatus{Phase: corev1.PodPending}
	if !calm(ev) {
		t.Fatal("a rollout on its way is not calm")
	}
	checkCalmHidesNoCause(t, obj, ev, DiagnoseOptions{})
	// Each sign of trouble makes it not calm.
	for name, edit := range map[string]func(*Evidence){
		"warning event":   func(ev *Evidence) { ev.Events = []corev1.Event{{Type: corev1.EventTypeWarning, Reason: "FailedMount"}} },
		"restart":         func(ev *Evidence) { ev.Pods[0].Status.ContainerStatuses[0].RestartCount = 1 },
		"waiting reason":  func(ev *Evidence) { ev.Pods[1].Status.ContainerStatuses[0].State.Waiting.Reason = "ErrImagePull" },
		"running unready": func(ev *Evidence) { ev.Pods[0].Status.Conditions[0].Status = corev1.ConditionFalse },
		"unscheduled": func(ev *Evidence) {
			ev.Pods[2].Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
		},
		"evicted": func(ev *Evidence) { ev.Pods[0].Status.Phase, ev.Pods[0].Status.Reason = corev1.PodFailed, "Evicted" },
		"replica failure": func(ev *Evidence) {
			ev.ReplicaSet.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue}}
		},
		"past termination": func(ev *Evidence) {
			ev.Pods[0].Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "OOMKilled"}
		},
	} {
		e := deepCopyEvidence(ev)
		edit(&e)
		if calm(e) {
			t.Errorf("%s: calm", name)
		}
	}
}

// checkCalmHidesNoCause fails if leaving calm evidence's pods and events
// out would change the diagnosis. Diagnosis tests over other corpora can
// call it too.
func checkCalmHidesNoCause(t *testing.T, obj *unstructured.Unstructured, ev Evidence, opts DiagnoseOptions) {
	t.Helper()
	if !calm(ev) {
		return
	}
	full := Diagnose(obj, Compute(obj), ev, opts)
	if reduced := Diagnose(obj, Compute(obj), Evidence{ReplicaSet: ev.ReplicaSet}, opts); reduced != full {
		t.Errorf("calm evidence diagnosed without pods: %+v, with them: %+v", reduced, full)
	}
}

func deepCopyEvidence(ev Evidence) Evidence {
	out := Evidence{ReplicaSet: ev.ReplicaSet.DeepCopy()}
	for _, p := range ev.Pods {
		out.Pods = append(out.Pods, *p.DeepCopy())
	}
	for _, e := range ev.Events {
		out.Events = append(out.Events, *e.DeepCopy())
	}
	return out
}

// TestTrimKeepsWhatIsRead: every status and diagnosis fixture reads the
// same trimmed as the apiserver sent it.
func TestTrimKeepsWhatIsRead(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "status", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no status fixtures: %v", err)
	}
	for _, p := range paths {
		name := "status/" + strings.TrimSuffix(filepath.Base(p), ".yaml")
		obj := loadObject(t, name)
		want := Compute(obj)
		trimmed := obj.DeepCopy()
		trimUnstructured(trimmed)
		if got := Compute(trimmed); got != want {
			t.Errorf("%s trimmed: %+v, want %+v", name, got, want)
		}
		if metadataOnlyKinds[obj.GroupVersionKind().GroupKind()] {
			pm := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: obj.GetName(), Namespace: obj.GetNamespace(),
				Generation: obj.GetGeneration(), DeletionTimestamp: obj.GetDeletionTimestamp()}}
			if got := Compute(metadataObject(pm, obj.GroupVersionKind())); got != want {
				t.Errorf("%s from metadata: %+v, want %+v", name, got, want)
			}
		}
	}
	for _, name := range diagnoseFixtures(t) {
		obj, ev := loadCase(t, name)
		opts := DiagnoseOptions{Now: fixtureNow(ev)}
		want := Diagnose(obj, Compute(obj), ev, opts)
		tobj, tev := trimmed(t, obj, ev)
		if got := Diagnose(tobj, Compute(tobj), tev, opts); got != want {
			t.Errorf("%s trimmed: %+v\nwant %+v", name, got, want)
		}
	}
}

// trimmed returns copies of a followed object and its evidence as the
// caches keep them.
func trimmed(t *testing.T, obj *unstructured.Unstructured, ev Evidence) (*unstructured.Unstructured, Evidence) {
	t.Helper()
	tobj := obj.DeepCopy()
	trimUnstructured(tobj)
	tev := deepCopyEvidence(ev)
	if tev.ReplicaSet != nil {
		if _, err := trimReplicaSet(tev.ReplicaSet); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tev.Pods {
		if _, err := trimPod(&tev.Pods[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tev.Events {
		if _, err := trimEvent(&tev.Events[i]); err != nil {
			t.Fatal(err)
		}
	}
	return tobj, tev
}

// TestTrimDropsBulk: what the transforms exist for is gone.
func TestTrimDropsBulk(t *testing.T) {
	d := loadObject(t, "status/deployment-current")
	d.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "baton"}})
	d.SetAnnotations(map[string]string{lastApplied: "{}", "keep": "me"})
	trimUnstructured(d)
	if _, found, _ := unstructured.NestedMap(d.Object, "spec", "template"); found || d.GetManagedFields() != nil ||
		d.GetAnnotations()[lastApplied] != "" || d.GetAnnotations()["keep"] != "me" {
		t.Errorf("trimmed deployment: %v", d.Object)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "c"}, "data": map[string]any{"big": strings.Repeat("x", 1<<10)}}}
	trimUnstructured(cm)
	if _, found := cm.Object["data"]; found {
		t.Error("configmap data kept")
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}, ManagedFields: []metav1.ManagedFieldsEntry{{}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i", Command: []string{"run"}}},
			Tolerations: []corev1.Toleration{{Key: "k"}}}}
	if _, err := trimPod(pod); err != nil {
		t.Fatal(err)
	}
	if pod.Annotations != nil || pod.ManagedFields != nil || pod.Spec.Tolerations != nil || pod.Spec.Containers[0].Command != nil ||
		pod.Spec.Containers[0].Image != "i" {
		t.Errorf("trimmed pod: %+v", pod)
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{revisionAnnotation: "3", "other": "x"}},
		Spec: appsv1.ReplicaSetSpec{Template: corev1.PodTemplateSpec{Spec: pod.Spec}}}
	if _, err := trimReplicaSet(rs); err != nil {
		t.Fatal(err)
	}
	if len(rs.Annotations) != 1 || rs.Annotations[revisionAnnotation] != "3" || rs.Spec.Template.Spec.Containers != nil {
		t.Errorf("trimmed replicaset: %+v", rs)
	}
}
