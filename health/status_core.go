package health

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// podStatus: a Running pod is Current once Ready; a completed one is Current
// for good; a Failed one is Failed (its containers will not start again).
func podStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	phase := stringField(obj, "status", "phase")
	switch phase {
	case "Succeeded":
		return Result{Status: Current, Message: "completed"}
	case "Failed":
		return Result{Status: Failed, Message: joinNonEmpty(": ", "pod failed",
			stringField(obj, "status", "reason"), stringField(obj, "status", "message"))}
	case "Running":
		if c, ok := statuscond.Find(obj, "Ready"); ok && c.Status == "True" {
			return Result{Status: Current, Message: "running and ready"}
		}
		return Result{Status: InProgress, Message: joinNonEmpty("; ", "running but not ready", waitingReasons(obj))}
	}
	// Pending, or no phase yet (the apiserver sets Pending on create, but a
	// status written by hand may lack it).
	if c, ok := statuscond.Find(obj, "PodScheduled"); ok && c.Status == "False" {
		return Result{Status: InProgress, Message: joinNonEmpty(": ", "not scheduled", c.Message)}
	}
	return Result{Status: InProgress, Message: joinNonEmpty("; ", "pending", waitingReasons(obj))}
}

// waitingReasons lists "container: Reason" for containers that wait, init
// containers first, e.g. "api: ImagePullBackOff".
func waitingReasons(obj *unstructured.Unstructured) string {
	var parts []string
	for _, field := range []string{"initContainerStatuses", "containerStatuses"} {
		statuses, _, _ := unstructured.NestedSlice(obj.Object, "status", field)
		for _, s := range statuses {
			m, ok := s.(map[string]any)
			if !ok {
				continue
			}
			reason, _, _ := unstructured.NestedString(m, "state", "waiting", "reason")
			if reason != "" {
				parts = append(parts, str(m["name"])+": "+reason)
			}
		}
	}
	return strings.Join(parts, ", ")
}

// Annotations the volume controllers put on a claim they work on.
const (
	// provisionerAnnotation: the PV controller names the provisioner that
	// is to create the claim's volume (once binding is not delayed).
	provisionerAnnotation     = "volume.kubernetes.io/storage-provisioner"
	provisionerAnnotationBeta = "volume.beta.kubernetes.io/storage-provisioner"
	// selectedNodeAnnotation: the scheduler picked a node for the first
	// consumer of a WaitForFirstConsumer claim.
	selectedNodeAnnotation = "volume.kubernetes.io/selected-node"
)

// pvcStatus: Current once bound to a volume. A Pending claim is InProgress
// while a volume is on its way: a provisioner has taken it, a consumer's
// node was picked, or it names its volume. A Pending claim nobody works on
// is Current: with volumeBindingMode WaitForFirstConsumer (kind's and many
// clouds' default class) it stays Pending until a pod uses it, which may
// be never (a suspended CronJob's claim), and that is no failure. A claim
// that cannot bind holds back the pods that mount it, and their diagnosis
// names it (the scheduler's "unbound immediate PersistentVolumeClaims").
func pvcStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	switch phase := stringField(obj, "status", "phase"); phase {
	case "Bound":
		return Result{Status: Current, Message: "bound to " + stringField(obj, "spec", "volumeName")}
	case "Lost":
		return Result{Status: Failed, Message: "volume lost"}
	case "", "Pending":
		ann := obj.GetAnnotations()
		switch {
		case ann[provisionerAnnotation] != "" || ann[provisionerAnnotationBeta] != "":
			p := ann[provisionerAnnotation]
			if p == "" {
				p = ann[provisionerAnnotationBeta]
			}
			return Result{Status: InProgress, Message: "waiting for " + p + " to provision a volume"}
		case ann[selectedNodeAnnotation] != "":
			return Result{Status: InProgress, Message: "waiting for a volume on node " + ann[selectedNodeAnnotation]}
		case stringField(obj, "spec", "volumeName") != "":
			return Result{Status: InProgress, Message: "waiting to bind volume " + stringField(obj, "spec", "volumeName")}
		}
		return Result{Status: Current, Message: "pending, no provisioner has taken it (its class waits for a first consumer, or has no provisioner): not awaited"}
	default:
		return Result{Status: InProgress, Message: "phase " + phase}
	}
}

// serviceStatus: only a LoadBalancer Service has something to wait for, its
// external address. Other types are Current as soon as they exist. A
// cluster without a load-balancer controller (kind, minikube without a
// tunnel, bare metal without MetalLB) never gives one, so whether to wait
// is a setting, named in the message (baton.yaml's
// environments[].health.loadBalancers).
func serviceStatus(obj *unstructured.Unstructured, opts StatusOptions) Result {
	if stringField(obj, "spec", "type") != "LoadBalancer" {
		return Result{Status: Current}
	}
	ingress, _, _ := unstructured.NestedSlice(obj.Object, "status", "loadBalancer", "ingress")
	if len(ingress) > 0 {
		var addrs []string
		for _, in := range ingress {
			if m, ok := in.(map[string]any); ok {
				addrs = append(addrs, joinNonEmpty(" ", str(m["ip"]), str(m["hostname"])))
			}
		}
		return Result{Status: Current, Message: "load balancer at " + strings.Join(addrs, ", ")}
	}
	if opts.SkipLoadBalancer {
		return Result{Status: Current, Message: "no load-balancer address yet, not awaited (health.loadBalancers: wait to wait for it)"}
	}
	return Result{Status: InProgress, Message: "waiting for a load-balancer address (none comes without a load-balancer controller; health.loadBalancers: skip to not wait)"}
}

// namespaceStatus: Current while Active. A namespace with a deletion
// timestamp is caught by the generic check; the phase is checked too because
// it is what `kubectl get ns` shows.
func namespaceStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if phase := stringField(obj, "status", "phase"); phase == "Terminating" {
		return Result{Status: Terminating, Message: "namespace terminating"}
	}
	return Result{Status: Current, Message: "active"}
}
