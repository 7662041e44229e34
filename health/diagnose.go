package health

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

// Diagnose names the cause of an object's status from the evidence about
// its current rollout. It is pure: the Finder gathers the evidence, and
// tests feed it objects captured from a cluster.
//
// For an object that is not Current, every pod that is not Ready is
// inspected and pod creation failures are read from the ReplicaSet (or the
// workload's own events); the most important problem is named, with a count
// of other pods that share its cause. For a Current object only a recent OOM
// kill counts. A Failed object with no more specific cause gets
// DeadlineExceeded (Deployment) or JobFailed (Job).
func Diagnose(obj *unstructured.Unstructured, res Result, ev Evidence, opts DiagnoseOptions) Diagnosis {
	opts = opts.withDefaults()
	rollout := res.Status != Current
	summary := res.Message
	if obj.GetKind() == "Deployment" && ev.ReplicaSet != nil && rollout {
		desired := intOr(obj, 1, "spec", "replicas")
		summary = fmt.Sprintf("%d/%d updated pods ready", ev.ReplicaSet.Status.ReadyReplicas, desired)
		if res.Status == Failed {
			summary = "progress deadline exceeded, " + summary
		}
	}

	var problems []problem
	pods := slices.Clone(ev.Pods)
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for i := range pods {
		if pods[i].DeletionTimestamp != nil {
			continue // leaving anyway; its replacement tells the story
		}
		p, ok := inspectPod(&pods[i], ev.Events, opts, rollout)
		// A Job's pods need not be Ready: they run to completion.
		if ok && !(p.cause == ProbeFailing && obj.GetKind() == "Job") {
			problems = append(problems, p)
		}
	}
	if rollout {
		if p, ok := creationProblem(obj, ev); ok {
			problems = append(problems, p)
		}
	}

	d := Diagnosis{Certain: res.Status == Failed}
	msg := objectName(obj) + ": " + summary
	if len(problems) > 0 {
		best := problems[0]
		for _, p := range problems[1:] {
			if p.better(best) {
				best = p
			}
		}
		d.Cause = best.cause
		d.Certain = d.Certain || best.certain
		if obj.GetKind() == "Pod" && best.subject == "pod "+obj.GetName() {
			// The pod is the object: its status adds nothing to the detail.
			msg = objectName(obj) + ": " + best.detail
		} else {
			msg = joinNonEmpty("; ", msg, best.subject+": "+best.detail)
		}
		if best.cause != NoCause {
			if others := countOthers(problems, best); others > 0 {
				msg += fmt.Sprintf(" (and %d more %s)", others, plural(int64(others), "pod", "pods"))
			}
		}
	}
	if d.Cause == NoCause && res.Status == Failed {
		switch obj.GetKind() {
		case "Deployment":
			d.Cause = DeadlineExceeded
		case "Job":
			d.Cause = JobFailed
		}
	}
	d.Message = clip(strings.TrimSuffix(oneLine(msg), ":"), maxMessage)
	return d
}

// countOthers counts the pods other than best's with the same cause.
func countOthers(problems []problem, best problem) int {
	n := 0
	for _, p := range problems {
		if p.cause == best.cause && p.subject != best.subject && strings.HasPrefix(p.subject, "pod ") {
			n++
		}
	}
	return n
}

// creationProblem finds pods that the workload's controller could not
// create: a ResourceQuota or an admission plugin (pod security, a webhook,
// a ValidatingAdmissionPolicy, a LimitRange) refused them. For a
// Deployment the newest ReplicaSet carries it, in its ReplicaFailure
// condition (which outlives the events, gone after an hour) or in
// FailedCreate events; a StatefulSet, DaemonSet, Job or bare ReplicaSet
// emits FailedCreate events on itself. A refusal is old news once every
// pod the controller wants exists.
func creationProblem(obj *unstructured.Unstructured, ev Evidence) (problem, bool) {
	if rs := ev.ReplicaSet; rs != nil {
		if rs.Spec.Replicas != nil && rs.Status.Replicas >= *rs.Spec.Replicas {
			return problem{}, false
		}
		subject := "replicaset " + rs.Name
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
				return refusal(subject, c.Message), true
			}
		}
		if e, ok := latestEvent(ev.Events, "ReplicaSet", rs.Name, "FailedCreate"); ok {
			return refusal(subject, e.Message), true
		}
		return problem{}, false
	}
	if allPodsExist(obj) {
		return problem{}, false
	}
	subject := strings.ToLower(obj.GetKind()) + " " + obj.GetName()
	if c, ok := statuscond.Find(obj, "ReplicaFailure"); ok && c.Status == "True" {
		return refusal(subject, c.Message), true
	}
	if e, ok := latestEvent(ev.Events, obj.GetKind(), obj.GetName(), "FailedCreate"); ok {
		return refusal(subject, e.Message), true
	}
	return problem{}, false
}

// allPodsExist reports whether a controller has every pod it wants, from
// its status counters.
func allPodsExist(obj *unstructured.Unstructured) bool {
	switch obj.GetKind() {
	case "StatefulSet", "ReplicaSet":
		return intOr(obj, 0, "status", "replicas") >= intOr(obj, 1, "spec", "replicas")
	case "DaemonSet":
		desired, ok := intField(obj, "status", "desiredNumberScheduled")
		return ok && intOr(obj, 0, "status", "currentNumberScheduled") >= desired
	}
	return false
}

// controllerWrapper is how a StatefulSet reports a refused pod or claim:
// "create Pod web-0 in StatefulSet web failed error: pods "web-0" is
// forbidden: ...".
var controllerWrapper = regexp.MustCompile(`^[Cc]reate (\w+) \S+ (?:for Pod \S+ )?in StatefulSet \S+ failed error: `)

// refusal names the policy that refused a controller's pods, from the
// message of its FailedCreate event or ReplicaFailure condition.
func refusal(subject, msg string) problem {
	msg = oneLine(msg)
	what := "pods"
	if m := controllerWrapper.FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):]
		if m[1] == "Claim" {
			what = "volume claims"
		}
	}
	msg = strings.TrimPrefix(msg, "Error creating: ")
	policy, cause, msg := refusingPolicy(msg)
	msg = forbiddenPrefix.ReplaceAllString(msg, "")
	detail := "cannot create " + what
	if policy != "" {
		detail += ", refused by " + policy
	}
	return problem{cause: cause, subject: subject, detail: detail + ": " + evidence(msg)}
}

// latestEvent returns the newest Warning event about kind/name with one of
// the reasons; of events equally new, the last listed.
func latestEvent(events []corev1.Event, kind, name string, reasons ...string) (*corev1.Event, bool) {
	var best *corev1.Event
	var bestAt time.Time
	for i := range events {
		e := &events[i]
		if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name {
			continue
		}
		if !slices.Contains(reasons, e.Reason) {
			continue
		}
		if at := eventTime(e); best == nil || !at.Before(bestAt) {
			best, bestAt = e, at
		}
	}
	return best, best != nil
}

// eventTime is when an event last happened. Events written through the
// events.k8s.io API fill eventTime and series; the core API fills
// lastTimestamp; either may be empty.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// objectName formats an object for messages and errors as "Kind ns/name",
// or "Kind name" for a cluster-scoped object.
func objectName(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
}
