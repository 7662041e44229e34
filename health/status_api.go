package health

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// crdStatus: Current once Established, that is once the apiserver serves
// the new resource. NamesAccepted=False means its names clash with another
// CRD, which no wait resolves.
func crdStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if c, ok := statuscond.Find(obj, "NamesAccepted"); ok && c.Status == "False" {
		return Result{Status: Failed, Message: "names not accepted: " + c.Message}
	}
	if c, ok := statuscond.Find(obj, "Established"); ok && c.Status == "True" {
		return Result{Status: Current, Message: "established"}
	}
	return Result{Status: InProgress, Message: "not yet established"}
}

// apiServiceStatus: Current once Available. An aggregated API is unavailable
// while its backing Deployment starts, so False is only InProgress.
func apiServiceStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	c, ok := statuscond.Find(obj, "Available")
	if !ok {
		return Result{Status: InProgress, Message: "availability not yet reported"}
	}
	if c.Status == "True" {
		return Result{Status: Current, Message: "available"}
	}
	return Result{Status: InProgress, Message: c.String()}
}

// pdbStatus: a PodDisruptionBudget is Current once the disruption controller
// has observed it. Zero allowed disruptions is not a rollout failure (a
// single-replica workload always has zero); it only blocks evictions, so it
// is reported in the message.
func pdbStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if r, ok := awaitObserved(obj); ok {
		return r
	}
	allowed := intOr(obj, 0, "status", "disruptionsAllowed")
	healthy := intOr(obj, 0, "status", "currentHealthy")
	want := intOr(obj, 0, "status", "desiredHealthy")
	return Result{Status: Current, Message: fmt.Sprintf("%d %s allowed, %d/%d healthy",
		allowed, plural(allowed, "disruption", "disruptions"), healthy, want)}
}

// hpaStatus: a HorizontalPodAutoscaler is Current unless it cannot scale its
// target at all (AbleToScale=False, e.g. the target does not exist yet).
// ScalingActive=False is only reported: a cluster without a metrics server
// says so forever while the workload itself runs fine. The controller first
// writes status after its sync period (15 s by default), so an HPA without
// status is not waited for.
func hpaStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if c, ok := statuscond.Find(obj, "AbleToScale"); ok && c.Status == "False" {
		return Result{Status: InProgress, Message: c.String()}
	}
	if c, ok := statuscond.Find(obj, "ScalingActive"); ok && c.Status == "False" {
		return Result{Status: Current, Message: "scaling inactive: " + c.String()}
	}
	replicas := intOr(obj, 0, "status", "currentReplicas")
	return Result{Status: Current, Message: fmt.Sprintf("%d %s", replicas, plural(replicas, "replica", "replicas"))}
}
