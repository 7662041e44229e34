package health

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		if c, ok := findCondition(obj, "Ready"); ok && c.Status == "True" {
			return Result{Status: Current, Message: "running and ready"}
		}
		return Result{Status: InProgress, Message: joinNonEmpty("; ", "running but not ready", waitingReasons(obj))}
	}
	// Pending, or no phase yet (the apiserver sets Pending on create, but a
	// status written by hand may lack it).
	if c, ok := findCondition(obj, "PodScheduled"); ok && c.Status == "False" {
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

// pvcStatus: Current once bound to a volume. A claim whose StorageClass has
// volumeBindingMode WaitForFirstConsumer stays Pending until a pod uses it;
// Compute cannot see the class, so such a claim reads InProgress.
func pvcStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	switch phase := stringField(obj, "status", "phase"); phase {
	case "Bound":
		return Result{Status: Current, Message: "bound to " + stringField(obj, "spec", "volumeName")}
	case "Lost":
		return Result{Status: Failed, Message: "volume lost"}
	case "", "Pending":
		return Result{Status: InProgress, Message: "not yet bound"}
	default:
		return Result{Status: InProgress, Message: "phase " + phase}
	}
}

// serviceStatus: only a LoadBalancer Service has something to wait for, its
// external address. Other types are Current as soon as they exist.
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
		return Result{Status: Current, Message: "load balancer address not awaited in this environment"}
	}
	return Result{Status: InProgress, Message: "waiting for a load balancer address"}
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
