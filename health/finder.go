package health

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ClusterReader is what a Finder reads from the cluster. The Checker
// serves it from its watch caches; NewClusterReader serves it with plain
// API calls.
type ClusterReader interface {
	// ListPods lists the pods in namespace that match selector and whose
	// controller has the UID controller.
	ListPods(ctx context.Context, namespace string, selector labels.Selector, controller types.UID) ([]corev1.Pod, error)
	// ListReplicaSets lists the ReplicaSets in namespace that match
	// selector and whose controller has the UID controller.
	ListReplicaSets(ctx context.Context, namespace string, selector labels.Selector, controller types.UID) ([]appsv1.ReplicaSet, error)
	// ListEvents lists the events about the object kind/name in namespace.
	// An implementation may return only Warning events: no other kind is
	// read.
	ListEvents(ctx context.Context, namespace, kind, name string) ([]corev1.Event, error)
}

// maxPodEventLists bounds the event lists per diagnosis: pods in the same
// rollout fail alike, and a 100-replica Deployment should not cost 100 API
// calls.
const maxPodEventLists = 5

// Finder gathers the evidence about an object's current rollout and names
// the cause of its status. It is safe for concurrent use if its reader is.
type Finder struct {
	reader ClusterReader
}

// NewFinder returns a Finder reading through reader.
func NewFinder(reader ClusterReader) *Finder {
	return &Finder{reader: reader}
}

// Find gathers the evidence about obj and diagnoses it (see Diagnose).
// When the evidence is calm (see calm), the pods and events are left out
// of the diagnosis: they cannot name a cause, and a rollout that
// progresses normally then costs a summary line, not an inspection of
// every pod at every change.
func (f *Finder) Find(ctx context.Context, obj *unstructured.Unstructured, res Result, opts DiagnoseOptions) (Diagnosis, error) {
	ev, err := f.Evidence(ctx, obj)
	if err != nil {
		return Diagnosis{Message: objectName(obj) + ": " + res.Message}, err
	}
	if calm(ev) {
		ev = Evidence{ReplicaSet: ev.ReplicaSet}
	}
	return Diagnose(obj, res, ev, opts), nil
}

// Evidence gathers the pods of obj's current rollout and the Warning events
// about them and their controller: for a Deployment the pods of its newest
// ReplicaSet (highest revision annotation), for a StatefulSet, DaemonSet,
// ReplicaSet or Job the pods it controls, for a Pod itself. Other kinds have
// no evidence.
func (f *Finder) Evidence(ctx context.Context, obj *unstructured.Unstructured) (Evidence, error) {
	var ev Evidence
	ns := obj.GetNamespace()
	switch obj.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps":
		sel, err := selectorOf(obj)
		if err != nil {
			return ev, err
		}
		rss, err := f.reader.ListReplicaSets(ctx, ns, sel, obj.GetUID())
		if err != nil {
			return ev, fmt.Errorf("list replicasets of %s: %w", objectName(obj), err)
		}
		ev.ReplicaSet = newestReplicaSet(rss, obj.GetUID())
		if ev.ReplicaSet == nil {
			return ev, nil // the controller has not created it yet
		}
		if ev.Pods, err = f.controlledPods(ctx, obj, sel, ev.ReplicaSet.UID); err != nil {
			return ev, err
		}
		if ev.Events, err = f.reader.ListEvents(ctx, ns, "ReplicaSet", ev.ReplicaSet.Name); err != nil {
			return ev, fmt.Errorf("list events of replicaset %s/%s: %w", ns, ev.ReplicaSet.Name, err)
		}
	case "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "Job.batch":
		sel, err := selectorOf(obj)
		if err != nil {
			return ev, err
		}
		if ev.Pods, err = f.controlledPods(ctx, obj, sel, obj.GetUID()); err != nil {
			return ev, err
		}
		if ev.Events, err = f.reader.ListEvents(ctx, ns, obj.GetKind(), obj.GetName()); err != nil {
			return ev, fmt.Errorf("list events of %s: %w", objectName(obj), err)
		}
	case "Pod":
		var pod corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pod); err != nil {
			return ev, fmt.Errorf("read %s: %w", objectName(obj), err)
		}
		ev.Pods = []corev1.Pod{pod}
	default:
		return ev, nil
	}

	listed := 0
	for _, p := range ev.Pods {
		if podReady(&p) || p.Status.Phase == corev1.PodSucceeded || listed == maxPodEventLists {
			continue
		}
		listed++
		events, err := f.reader.ListEvents(ctx, ns, "Pod", p.Name)
		if err != nil {
			return ev, fmt.Errorf("list events of pod %s/%s: %w", ns, p.Name, err)
		}
		ev.Events = append(ev.Events, events...)
	}
	return ev, nil
}

// calm reports whether evidence holds nothing Diagnose could name a cause
// from: no Warning event, no refused pod creation, and every pod either on
// its way (pending, its containers being created) or ready, without a
// restart, a failed container or a past termination. Such evidence is a
// rollout progressing normally. It must stay stricter than Diagnose: a pod
// state that Diagnose reads (a waiting reason, a termination, a scheduling
// failure, a pod that runs but is not ready) makes evidence not calm, and
// TestCalmHidesNoCause checks that over every captured and real failure.
func calm(ev Evidence) bool {
	if len(ev.Events) > 0 {
		return false
	}
	if rs := ev.ReplicaSet; rs != nil {
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				return false
			}
		}
	}
	for i := range ev.Pods {
		if !podCalm(&ev.Pods[i]) {
			return false
		}
	}
	return true
}

// podCalm: see calm.
func podCalm(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil {
		return true // Diagnose skips pods on their way out
	}
	switch p.Status.Phase {
	case corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded:
	default:
		return false // Failed (evicted, a failed Job pod), Unknown, or none
	}
	if p.Status.Reason != "" {
		return false
	}
	if c, ok := podCondition(p, corev1.PodScheduled); ok && c.Status == corev1.ConditionFalse {
		return false
	}
	if p.Status.Phase == corev1.PodRunning && !podReady(p) {
		return false
	}
	for _, cs := range slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses) {
		if cs.RestartCount > 0 || cs.LastTerminationState.Terminated != nil {
			return false
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return false
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return false
		}
	}
	return true
}

// controlledPods lists the pods matching sel whose controller has uid.
func (f *Finder) controlledPods(ctx context.Context, obj *unstructured.Unstructured, sel labels.Selector, uid types.UID) ([]corev1.Pod, error) {
	pods, err := f.reader.ListPods(ctx, obj.GetNamespace(), sel, uid)
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", objectName(obj), err)
	}
	return pods, nil
}

// selectorOf reads spec.selector as a label selector.
func selectorOf(obj *unstructured.Unstructured) (labels.Selector, error) {
	raw, found, err := unstructured.NestedMap(obj.Object, "spec", "selector")
	if err != nil || !found {
		return nil, fmt.Errorf("%s: no spec.selector", objectName(obj))
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return nil, fmt.Errorf("%s: spec.selector: %w", objectName(obj), err)
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil {
		return nil, fmt.Errorf("%s: spec.selector: %w", objectName(obj), err)
	}
	return sel, nil
}

// revisionAnnotation is where the Deployment controller numbers its
// ReplicaSets; the highest is the current rollout.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// newestReplicaSet returns the ReplicaSet controlled by owner with the
// highest revision, ties broken by creation time.
func newestReplicaSet(rss []appsv1.ReplicaSet, owner types.UID) *appsv1.ReplicaSet {
	var best *appsv1.ReplicaSet
	var bestRev int64 = -1
	for i := range rss {
		rs := &rss[i]
		if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != owner {
			continue
		}
		rev, err := strconv.ParseInt(rs.Annotations[revisionAnnotation], 10, 64)
		if err != nil {
			rev = 0
		}
		if best == nil || rev > bestRev || (rev == bestRev && best.CreationTimestamp.Before(&rs.CreationTimestamp)) {
			best, bestRev = rs, rev
		}
	}
	if best == nil {
		return nil
	}
	return best.DeepCopy()
}

// NewClusterReader returns a ClusterReader that lists with API calls: for
// one-off diagnoses, where keeping watch caches would cost more.
func NewClusterReader(client kubernetes.Interface) ClusterReader {
	return apiReader{client: client}
}

type apiReader struct {
	client kubernetes.Interface
}

func (r apiReader) ListPods(ctx context.Context, namespace string, selector labels.Selector, controller types.UID) ([]corev1.Pod, error) {
	list, err := r.client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return !controlledBy(&p, controller) }), nil
}

func (r apiReader) ListReplicaSets(ctx context.Context, namespace string, selector labels.Selector, controller types.UID) ([]appsv1.ReplicaSet, error) {
	list, err := r.client.AppsV1().ReplicaSets(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(list.Items, func(rs appsv1.ReplicaSet) bool { return !controlledBy(&rs, controller) }), nil
}

func controlledBy(obj metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == uid
}

func (r apiReader) ListEvents(ctx context.Context, namespace, kind, name string) ([]corev1.Event, error) {
	sel := fields.Set{
		"involvedObject.kind": kind,
		"involvedObject.name": name,
		"type":                corev1.EventTypeWarning,
	}.AsSelector()
	list, err := r.client.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// isWorkload reports whether the Finder gathers evidence for kind: the
// Checker watches pods, ReplicaSets and events only in namespaces that hold
// one.
func isWorkload(gk string) bool {
	switch gk {
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "Job.batch", "Pod":
		return true
	}
	return false
}
