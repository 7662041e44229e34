package health

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// jobStatus: Current when Complete, Failed when Failed, InProgress while
// pods run.
func jobStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	// byType finds a condition that is True (a type listed twice counts by
	// its first entry, statuscond's rule).
	byType := func(t string) (statuscond.Condition, bool) {
		c, ok := statuscond.Find(obj, t)
		return c, ok && c.Status == "True"
	}
	// Since Kubernetes 1.31 the controller first sets FailureTarget (or
	// SuccessCriteriaMet) and only sets Failed (Complete) once the pods are
	// gone. The outcome is decided at the first condition, so it counts.
	for _, t := range []string{"Failed", "FailureTarget"} {
		if c, ok := byType(t); ok {
			return Result{Status: Failed, Message: joinNonEmpty(": ", "job failed", c.Reason, c.Message)}
		}
	}
	if _, ok := byType("Complete"); ok {
		return Result{Status: Current, Message: "completed"}
	}
	if _, ok := byType("SuccessCriteriaMet"); ok {
		return Result{Status: InProgress, Message: "succeeded, waiting for remaining pods to finish"}
	}
	// A suspended Job runs no pods until resumed; like a paused Deployment,
	// the suspension is the state asked for.
	if boolField(obj, "spec", "suspend") {
		return Result{Status: Current, Message: "suspended"}
	}
	active := intOr(obj, 0, "status", "active")
	succeeded := intOr(obj, 0, "status", "succeeded")
	failed := intOr(obj, 0, "status", "failed")
	msg := fmt.Sprintf("%d active, %d succeeded", active, succeeded)
	if completions, ok := intField(obj, "spec", "completions"); ok {
		msg = fmt.Sprintf("%d active, %d/%d succeeded", active, succeeded, completions)
	}
	if failed > 0 {
		msg += fmt.Sprintf(", %d failed", failed)
	}
	return Result{Status: InProgress, Message: msg}
}

// cronJobStatus: a CronJob is only a schedule, so it is Current once it
// exists. Its Jobs are separate objects; a failing one is that Job's
// problem. CronJob status has no observedGeneration to compare.
func cronJobStatus(obj *unstructured.Unstructured, _ StatusOptions) Result {
	if boolField(obj, "spec", "suspend") {
		return Result{Status: Current, Message: "suspended"}
	}
	if last := stringField(obj, "status", "lastScheduleTime"); last != "" {
		return Result{Status: Current, Message: "last scheduled at " + last}
	}
	return Result{Status: Current, Message: "not yet scheduled"}
}
