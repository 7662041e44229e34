package health

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// problem is one thing found wrong with a pod or with creating pods.
type problem struct {
	cause    Cause
	subject  string // "pod api-7d9f8-x2k4p", "replicaset api-7d9f8"
	detail   string // "container api OOMKilled (exit 137, 4 restarts)"
	restarts int32
	certain  bool
}

// better reports whether p should be named before q.
func (p problem) better(q problem) bool {
	if p.cause.rank() != q.cause.rank() {
		return p.cause.rank() < q.cause.rank()
	}
	if p.certain != q.certain {
		return p.certain
	}
	if p.restarts != q.restarts {
		return p.restarts > q.restarts
	}
	return p.subject < q.subject
}

// imagePullReasons are the waiting reasons of a container whose image the
// kubelet cannot get.
var imagePullReasons = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}

// inspectPod finds the most important problem of one pod. With rollout set,
// the workload is not ready and every reason a pod is not Ready counts;
// without it, the workload is ready and only a recent OOM kill counts (a
// container that restarted after one looks healthy again).
func inspectPod(pod *corev1.Pod, events []corev1.Event, opts DiagnoseOptions, rollout bool) (problem, bool) {
	subject := "pod " + pod.Name
	var best problem
	found := false
	consider := func(p problem) {
		p.subject = subject
		if !found || p.better(best) {
			best, found = p, true
		}
	}
	statuses := slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses)

	if !rollout || pod.Status.Phase == corev1.PodSucceeded || podReady(pod) {
		for _, cs := range statuses {
			if p, ok := recentOOM(cs, opts); ok {
				consider(p)
			}
		}
		return best, found
	}

	if c, ok := podCondition(pod, corev1.PodScheduled); ok && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		msg := c.Message
		if ev, ok := latestEvent(events, "Pod", pod.Name, "FailedScheduling"); ok && msg == "" {
			msg = ev.Message
		}
		consider(problem{cause: Unschedulable, detail: "unschedulable: " + schedulerSummary(msg)})
	}
	for _, cs := range statuses {
		if p, ok := inspectContainer(pod, cs, events, opts); ok {
			consider(p)
		}
	}
	if !found && pod.Status.Phase == corev1.PodRunning {
		// Every container runs (or reports nothing) yet the pod is not
		// Ready: a readiness gate or probe at pod level holds it back.
		detail := "running but not ready"
		if ev, ok := latestEvent(events, "Pod", pod.Name, "Unhealthy"); ok {
			detail += " (" + ev.Message + ")"
		}
		consider(problem{cause: ProbeFailing, detail: detail})
	}
	return best, found
}

// inspectContainer finds the problem of one container of a pod that is not
// Ready. The checks run from the most to the least specific reason, so an
// OOM kill is named as such although the container also crash-loops.
func inspectContainer(pod *corev1.Pod, cs corev1.ContainerStatus, events []corev1.Event, opts DiagnoseOptions) (problem, bool) {
	w := cs.State.Waiting
	switch {
	case w != nil && slices.Contains(imagePullReasons, w.Reason):
		// Not pulled now means not pulled on retry either, short of a
		// registry outage: the image reference or its credentials are wrong.
		detail := fmt.Sprintf("container %s cannot pull image %q (%s)", cs.Name, specImage(pod, cs), w.Reason)
		if w.Message != "" {
			detail = fmt.Sprintf("container %s cannot pull image %q (%s: %s)", cs.Name, specImage(pod, cs), w.Reason, w.Message)
		}
		return problem{cause: ImagePull, detail: detail, restarts: cs.RestartCount, certain: true}, true
	case w != nil && w.Reason == "CreateContainerConfigError":
		// The kubelet's message names the missing object, e.g.
		// `configmap "app-config" not found`.
		return problem{cause: ConfigError, detail: fmt.Sprintf("container %s: %s (CreateContainerConfigError)", cs.Name, w.Message), restarts: cs.RestartCount}, true
	case terminatedBy(cs, "OOMKilled") != nil:
		t := terminatedBy(cs, "OOMKilled")
		return problem{
			cause:    OOMKilled,
			detail:   fmt.Sprintf("container %s OOMKilled (exit %d, %d %s)", cs.Name, t.ExitCode, cs.RestartCount, plural(int64(cs.RestartCount), "restart", "restarts")),
			restarts: cs.RestartCount,
			certain:  cs.RestartCount >= opts.RestartThreshold,
		}, true
	case w != nil && w.Reason == "CrashLoopBackOff":
		last := "last exit unknown"
		if t := cs.LastTerminationState.Terminated; t != nil {
			last = strings.TrimSpace(fmt.Sprintf("last exit %d %s", t.ExitCode, t.Reason))
		}
		return problem{
			cause:    CrashLoop,
			detail:   fmt.Sprintf("container %s CrashLoopBackOff (%s, %d %s)", cs.Name, last, cs.RestartCount, plural(int64(cs.RestartCount), "restart", "restarts")),
			restarts: cs.RestartCount,
			certain:  cs.RestartCount >= opts.RestartThreshold,
		}, true
	case w != nil && w.Reason == "ContainerCreating":
		// A ConfigMap or Secret mounted as a volume that does not exist
		// leaves the container in ContainerCreating; only the kubelet's
		// FailedMount event says why.
		if ev, ok := latestEvent(events, "Pod", pod.Name, "FailedMount"); ok && strings.Contains(ev.Message, "not found") {
			return problem{cause: ConfigError, detail: fmt.Sprintf("container %s: %s (FailedMount)", cs.Name, ev.Message)}, true
		}
	case cs.State.Running != nil && !cs.Ready:
		detail := fmt.Sprintf("container %s running but not ready", cs.Name)
		if ev, ok := latestEvent(events, "Pod", pod.Name, "Unhealthy"); ok {
			detail += " (" + ev.Message + ")"
		}
		return problem{cause: ProbeFailing, detail: detail, restarts: cs.RestartCount}, true
	case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
		// A failed container of a Job pod: no cause of its own, but the
		// exit code is what the reader needs next to "job failed".
		t := cs.State.Terminated
		return problem{detail: strings.TrimSpace(fmt.Sprintf("container %s terminated (exit %d %s)", cs.Name, t.ExitCode, t.Reason)), restarts: cs.RestartCount}, true
	}
	return problem{}, false
}

// recentOOM finds a container of a ready pod that was OOM-killed within the
// recent window: it restarted and looks healthy, but it will be killed
// again, so it is certain trouble.
func recentOOM(cs corev1.ContainerStatus, opts DiagnoseOptions) (problem, bool) {
	t := cs.LastTerminationState.Terminated
	if opts.Now.IsZero() || t == nil || t.Reason != "OOMKilled" || t.FinishedAt.IsZero() {
		return problem{}, false
	}
	if opts.Now.Sub(t.FinishedAt.Time) > opts.RecentWindow {
		return problem{}, false
	}
	// The time, not "5m ago": a monitor reports only changes, and an age
	// would change the message at every evaluation.
	return problem{
		cause: OOMKilled,
		detail: fmt.Sprintf("container %s OOMKilled at %s (exit %d, %d %s)", cs.Name, t.FinishedAt.UTC().Format(time.RFC3339),
			t.ExitCode, cs.RestartCount, plural(int64(cs.RestartCount), "restart", "restarts")),
		restarts: cs.RestartCount,
		certain:  true,
	}, true
}

// terminatedBy returns the container's current or last termination when it
// has the given reason.
func terminatedBy(cs corev1.ContainerStatus, reason string) *corev1.ContainerStateTerminated {
	if t := cs.State.Terminated; t != nil && t.Reason == reason {
		return t
	}
	if t := cs.LastTerminationState.Terminated; t != nil && t.Reason == reason {
		return t
	}
	return nil
}

// specImage is the image the pod spec asks for; the status may show a
// resolved or empty image while pulling fails.
func specImage(pod *corev1.Pod, cs corev1.ContainerStatus) string {
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		if c.Name == cs.Name {
			return c.Image
		}
	}
	return cs.Image
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) (corev1.PodCondition, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == t {
			return c, true
		}
	}
	return corev1.PodCondition{}, false
}

func podReady(pod *corev1.Pod) bool {
	c, ok := podCondition(pod, corev1.PodReady)
	return ok && c.Status == corev1.ConditionTrue
}

// schedulerSummary keeps the first part of a scheduler message: the
// "preemption: ..." tail repeats the node count and rarely helps.
func schedulerSummary(msg string) string {
	if i := strings.Index(msg, " preemption:"); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}
