package health

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// deploymentStatus: Current once every desired pod runs the newest template
// and is available, with no pod of an older template left.
func deploymentStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if r, ok := awaitObserved(obj); ok {
		return r
	}
	// The controller gives up after spec.progressDeadlineSeconds and says so
	// only in this condition; the replica counters stay where they were.
	if c, ok := statuscond.Find(obj, "Progressing"); ok && c.Reason == "ProgressDeadlineExceeded" {
		return Result{Status: Failed, Message: "progress deadline exceeded: " + c.Message}
	}
	// A paused Deployment does not roll out until resumed: waiting for it
	// would only end at the timeout, so its pause is taken as the goal.
	if boolField(obj, "spec", "paused") {
		return Result{Status: Current, Message: "rollout paused"}
	}
	desired := intOr(obj, 1, "spec", "replicas")
	total := intOr(obj, 0, "status", "replicas")
	updated := intOr(obj, 0, "status", "updatedReplicas")
	available := intOr(obj, 0, "status", "availableReplicas")
	switch {
	case updated < desired:
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods updated", updated, desired)}
	case total > updated:
		// maxSurge pods of the old template still run, or scaled-down pods
		// are still terminating.
		old := total - updated
		return Result{Status: InProgress, Message: fmt.Sprintf("%d old %s pending termination", old, plural(old, "pod", "pods"))}
	case available < updated:
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d updated pods available", available, desired)}
	}
	return Result{Status: Current, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
}

// statefulSetStatus: Current once every pod is ready and, for rolling
// updates, the pods above the partition run the update revision.
// StatefulSet never sets conditions, so only the counters and revisions
// tell.
func statefulSetStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if r, ok := awaitObserved(obj); ok {
		return r
	}
	desired := intOr(obj, 1, "spec", "replicas")
	total := intOr(obj, 0, "status", "replicas")
	ready := intOr(obj, 0, "status", "readyReplicas")
	updated := intOr(obj, 0, "status", "updatedReplicas")
	switch {
	case total < desired:
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods created", total, desired)}
	case total > desired:
		extra := total - desired
		return Result{Status: InProgress, Message: fmt.Sprintf("%d %s pending termination", extra, plural(extra, "pod", "pods"))}
	case ready < desired:
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods ready", ready, desired)}
	}
	// availableReplicas honours minReadySeconds. Older apiservers do not
	// report it, so it only counts when present.
	if available, ok := intField(obj, "status", "availableReplicas"); ok && available < desired {
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
	}
	// With OnDelete the controller replaces pods only when someone deletes
	// them: the revisions may differ indefinitely and that is the intent.
	if stringField(obj, "spec", "updateStrategy", "type") == "OnDelete" {
		return Result{Status: Current, Message: fmt.Sprintf("%d/%d pods ready (OnDelete updates)", ready, desired)}
	}
	if partition := intOr(obj, 0, "spec", "updateStrategy", "rollingUpdate", "partition"); partition > 0 {
		// Pods below the partition keep the old revision on purpose, and
		// currentRevision stays old, so only the updated count tells.
		want := max(desired-partition, 0)
		if updated < want {
			return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods above partition %d updated", updated, want, partition)}
		}
		return Result{Status: Current, Message: fmt.Sprintf("partitioned rollout: %d/%d pods updated", updated, want)}
	}
	current := stringField(obj, "status", "currentRevision")
	update := stringField(obj, "status", "updateRevision")
	if update != "" && current != update {
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods updated to revision %s", updated, desired, update)}
	}
	return Result{Status: Current, Message: fmt.Sprintf("%d/%d pods ready", ready, desired)}
}

// daemonSetStatus: Current once every node that should run the pod runs the
// newest template and the pod is available there.
func daemonSetStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if r, ok := awaitObserved(obj); ok {
		return r
	}
	// desiredNumberScheduled is 0 when no node matches: nothing to wait for.
	desired := intOr(obj, 0, "status", "desiredNumberScheduled")
	updated := intOr(obj, 0, "status", "updatedNumberScheduled")
	available := intOr(obj, 0, "status", "numberAvailable")
	// With OnDelete, pods are replaced only when deleted, so updated may lag
	// on purpose.
	if stringField(obj, "spec", "updateStrategy", "type") != "OnDelete" && updated < desired {
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods updated", updated, desired)}
	}
	if available < desired {
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
	}
	return Result{Status: Current, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
}

// replicaSetStatus: Current once the desired number of pods is available
// and no extra pod is left.
func replicaSetStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if r, ok := awaitObserved(obj); ok {
		return r
	}
	desired := intOr(obj, 1, "spec", "replicas")
	total := intOr(obj, 0, "status", "replicas")
	available := intOr(obj, 0, "status", "availableReplicas")
	// A ReplicaFailure condition (pods refused by a quota or admission) is
	// not terminal: a raised quota lets the controller go on. Diagnose
	// names it as the cause.
	if available < desired {
		return Result{Status: InProgress, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
	}
	if total > desired {
		extra := total - desired
		return Result{Status: InProgress, Message: fmt.Sprintf("%d %s pending termination", extra, plural(extra, "pod", "pods"))}
	}
	return Result{Status: Current, Message: fmt.Sprintf("%d/%d pods available", available, desired)}
}
