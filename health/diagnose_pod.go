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
	// container is the container at fault, if any: other containers of
	// the pod with the same cause are named after it.
	container string
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

// container is one container of a pod with its status and spec.
type container struct {
	name   string
	init   bool
	status corev1.ContainerStatus
	spec   *corev1.Container // nil when the status names a container the spec lacks
}

// label names the container in messages: "container api", "init
// container migrate".
func (c container) label() string {
	if c.init {
		return "init container " + c.name
	}
	return "container " + c.name
}

// image is the image the pod spec asks for; the status may show a resolved
// or empty image while pulling fails.
func (c container) image() string {
	if c.spec != nil && c.spec.Image != "" {
		return c.spec.Image
	}
	return c.status.Image
}

// containersOf pairs a pod's container statuses with their specs, init
// containers first.
func containersOf(pod *corev1.Pod) []container {
	var out []container
	add := func(statuses []corev1.ContainerStatus, specs []corev1.Container, init bool) {
		for _, cs := range statuses {
			c := container{name: cs.Name, init: init, status: cs}
			if i := slices.IndexFunc(specs, func(s corev1.Container) bool { return s.Name == cs.Name }); i >= 0 {
				c.spec = &specs[i]
			}
			out = append(out, c)
		}
	}
	add(pod.Status.InitContainerStatuses, pod.Spec.InitContainers, true)
	add(pod.Status.ContainerStatuses, pod.Spec.Containers, false)
	return out
}

// imagePullReasons are the waiting reasons of a container whose image the
// kubelet cannot get.
var imagePullReasons = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}

// startReasons are the waiting reasons of a container the runtime cannot
// create or start: a command that does not exist, a bad mount or device.
var startReasons = []string{"RunContainerError", "CreateContainerError", "StartError"}

// inspectPod finds the most important problem of one pod. With rollout set,
// the workload is not ready and every reason a pod is not Ready counts;
// without it, the workload is ready and only a recent OOM kill counts (a
// container that restarted after one looks healthy again).
func inspectPod(pod *corev1.Pod, events []corev1.Event, opts DiagnoseOptions, rollout bool) (problem, bool) {
	subject := "pod " + pod.Name
	var found []problem
	consider := func(p problem) {
		p.subject = subject
		found = append(found, p)
	}
	containers := containersOf(pod)

	if !rollout || pod.Status.Phase == corev1.PodSucceeded || podReady(pod) {
		for _, c := range containers {
			if p, ok := recentOOM(c, opts); ok {
				consider(p)
			}
		}
		return pick(found)
	}

	evs := eventsOf(events, pod)
	if p, ok := podFailure(pod, evs); ok {
		consider(p)
	}
	if p, ok := schedulingProblem(pod, evs); ok {
		consider(p)
	}
	if p, ok := volumeProblem(pod, containers, evs); ok {
		consider(p)
	}
	for _, c := range containers {
		if p, ok := inspectContainer(c, evs, opts); ok {
			p.container = c.name
			consider(p)
		}
	}
	if len(found) == 0 && pod.Status.Phase == corev1.PodRunning {
		consider(notReady(pod, evs))
	}
	return pick(found)
}

// pick returns the most important problem, naming the other containers of
// the pod that have the same cause.
func pick(found []problem) (problem, bool) {
	if len(found) == 0 {
		return problem{}, false
	}
	best := found[0]
	for _, p := range found[1:] {
		if p.better(best) {
			best = p
		}
	}
	var also []string
	for _, p := range found {
		if p.cause == best.cause && p.cause != NoCause && p.container != "" && p.container != best.container {
			also = append(also, p.container)
		}
	}
	switch {
	case len(also) == 1:
		best.detail += "; also container " + also[0]
	case len(also) > 1:
		best.detail += "; also containers " + strings.Join(also, ", ")
	}
	return best, true
}

// podFailure reads a Failed pod's own reason: an eviction (with the node's
// pressure and the containers' usage), or the kubelet refusing the pod
// (OutOfcpu, NodeAffinity, a node shutdown, ...).
func podFailure(pod *corev1.Pod, evs *podEvents) (problem, bool) {
	if pod.Status.Phase != corev1.PodFailed || pod.Status.Reason == "" {
		return problem{}, false
	}
	msg := pod.Status.Message
	if c, ok := podCondition(pod, corev1.DisruptionTarget); ok && msg == "" && c.Status == corev1.ConditionTrue {
		msg = c.Message
	}
	if pod.Status.Reason == "Evicted" {
		if e, ok := evs.newest(nil, "Evicted"); ok && msg == "" {
			msg = e.Message
		}
		return problem{cause: Evicted, detail: joinNonEmpty(": ", "evicted", evidence(msg))}, true
	}
	return problem{detail: joinNonEmpty(": ", "failed", pod.Status.Reason, evidence(msg))}, true
}

// schedulingProblem reads why a pod has no node: the PodScheduled
// condition's message or, where the status does not say (as `kubectl
// describe` shows it, or a status written before the scheduler's), the
// newest FailedScheduling event.
func schedulingProblem(pod *corev1.Pod, evs *podEvents) (problem, bool) {
	if pod.Spec.NodeName != "" {
		return problem{}, false
	}
	c, hasCond := podCondition(pod, corev1.PodScheduled)
	if hasCond && c.Status == corev1.ConditionTrue {
		return problem{}, false
	}
	if hasCond && c.Reason == corev1.PodReasonSchedulingGated {
		// Held on purpose (a queueing controller's gate): not a failure.
		return problem{detail: joinNonEmpty(": ", "waiting for scheduling gates", evidence(c.Message))}, true
	}
	msg := c.Message
	if msg == "" {
		if e, ok := evs.newest(nil, "FailedScheduling"); ok {
			msg = e.Message
		}
	}
	if msg == "" && c.Reason != corev1.PodReasonUnschedulable {
		return problem{}, false // not yet tried: the scheduler may be busy
	}
	detail := joinNonEmpty(": ", "unschedulable", schedulerSummary(msg))
	if strings.Contains(msg, "unbound") && strings.Contains(msg, "PersistentVolumeClaims") {
		if names := claimNames(pod); names != "" {
			detail += " (claims: " + names + ")"
		}
	}
	return problem{cause: Unschedulable, detail: detail}, true
}

// volumeProblem reads why a pod bound to a node starts no container: the
// kubelet's newest FailedMount or FailedAttachVolume event (a missing
// ConfigMap or Secret is a config error), or a sandbox it cannot create.
func volumeProblem(pod *corev1.Pod, containers []container, evs *podEvents) (problem, bool) {
	if pod.Spec.NodeName == "" || pod.Status.Phase != corev1.PodPending {
		return problem{}, false
	}
	for _, c := range containers {
		if c.status.State.Running != nil || c.status.State.Terminated != nil || c.status.LastTerminationState.Terminated != nil {
			return problem{}, false // the sandbox and volumes were set up
		}
	}
	if e, ok := evs.newest(nil, "FailedMount", "FailedAttachVolume"); ok {
		cause := Volume
		if strings.Contains(e.Message, "not found") && (strings.Contains(e.Message, "configmap") || strings.Contains(e.Message, "secret")) {
			cause = ConfigError
		}
		return problem{cause: cause, detail: fmt.Sprintf("volumes not mounted (%s): %s", e.Reason, evidence(e.Message))}, true
	}
	if e, ok := evs.newest(nil, "FailedCreatePodSandBox"); ok {
		return problem{detail: "sandbox not created (FailedCreatePodSandBox): " + evidence(e.Message)}, true
	}
	return problem{}, false
}

// inspectContainer finds the problem of one container of a pod that is not
// Ready. The checks run from the most to the least specific reason, so an
// OOM kill is named as such although the container also crash-loops, and
// a crash loop as a liveness probe's when the probe is what kills it.
func inspectContainer(c container, evs *podEvents, opts DiagnoseOptions) (problem, bool) {
	cs := c.status
	w := cs.State.Waiting
	switch {
	case w != nil && slices.Contains(imagePullReasons, w.Reason):
		// Not pulled now means not pulled on retry either, short of a
		// registry outage: the image reference or its credentials are wrong.
		detail := fmt.Sprintf("%s cannot pull image %q (%s)", c.label(), c.image(), w.Reason)
		if why := pullError(c, w, evs); why != "" {
			detail = fmt.Sprintf("%s cannot pull image %q (%s: %s)", c.label(), c.image(), w.Reason, why)
		}
		return problem{cause: ImagePull, detail: detail, restarts: cs.RestartCount, certain: true}, true
	case w != nil && w.Reason == "CreateContainerConfigError":
		// The kubelet's message names the missing object, e.g.
		// `configmap "app-config" not found`; `kubectl describe` shows it
		// only in the Failed event ("Error: secrets "x" not found").
		return problem{cause: ConfigError, detail: fmt.Sprintf("%s: %s (CreateContainerConfigError)", c.label(), failedText(c, w.Message, evs)),
			restarts: cs.RestartCount}, true
	case w != nil && slices.Contains(startReasons, w.Reason):
		// The runtime cannot start what the spec says (an executable not
		// found): retrying will not help.
		msg := w.Message
		if t := cs.LastTerminationState.Terminated; msg == "" && t != nil {
			msg = t.Message
		}
		return problem{cause: ConfigError, detail: fmt.Sprintf("%s cannot start (%s, %s): %s", c.label(), w.Reason, restarts(cs), failedText(c, msg, evs)),
			restarts: cs.RestartCount, certain: cs.RestartCount >= opts.RestartThreshold}, true
	case terminatedBy(cs, "OOMKilled") != nil:
		t := terminatedBy(cs, "OOMKilled")
		return problem{
			cause:    OOMKilled,
			detail:   fmt.Sprintf("%s OOMKilled (exit %d, %s)", c.label(), t.ExitCode, restarts(cs)),
			restarts: cs.RestartCount,
			certain:  cs.RestartCount >= opts.RestartThreshold,
		}, true
	}
	if p, ok := killedByProbe(c, evs, opts); ok {
		return p, true
	}
	switch {
	case w != nil && w.Reason == "CrashLoopBackOff":
		last := "last exit unknown"
		why := ""
		if t := cs.LastTerminationState.Terminated; t != nil {
			last = strings.TrimSpace(fmt.Sprintf("last exit %d %s", t.ExitCode, t.Reason))
			why = t.Message
		}
		detail := fmt.Sprintf("%s CrashLoopBackOff (%s, %s)", c.label(), last, restarts(cs))
		if why = failedText(c, why, evs); why != "" {
			detail += ": " + why
		}
		return problem{cause: CrashLoop, detail: detail, restarts: cs.RestartCount, certain: cs.RestartCount >= opts.RestartThreshold}, true
	case cs.State.Running != nil && c.init && !cs.Ready:
		// An init container runs to completion (or, as a sidecar, until
		// started); one still running holds the pod back.
		return problem{detail: c.label() + " still running", restarts: cs.RestartCount}, true
	case cs.State.Running != nil && !cs.Ready:
		return problem{cause: ProbeFailing, detail: c.label() + " " + unready(c, evs), restarts: cs.RestartCount}, true
	case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
		// A failed container of a Job pod: no cause of its own, but the
		// exit code is what the reader needs next to "job failed".
		t := cs.State.Terminated
		detail := strings.TrimSpace(fmt.Sprintf("%s terminated (exit %d %s)", c.label(), t.ExitCode, t.Reason))
		if t.Message != "" {
			detail += ": " + evidence(t.Message)
		}
		return problem{detail: detail, restarts: cs.RestartCount}, true
	}
	return problem{}, false
}

// pullError is the registry's answer: the waiting message when it holds
// more than "Back-off pulling image" (ErrImagePull on docker), else the
// newest Failed event about pulling this container's image, which is where
// containerd and CRI-O put it.
func pullError(c container, w *corev1.ContainerStateWaiting, evs *podEvents) string {
	if w.Message != "" && !strings.HasPrefix(w.Message, "Back-off pulling image") {
		return evidence(w.Message)
	}
	prefix := fmt.Sprintf("Failed to pull image %q: ", c.image())
	e, ok := evs.containerEvent(c, func(m string) bool { return strings.HasPrefix(m, prefix) }, "Failed")
	if !ok {
		return ""
	}
	return evidence(strings.TrimPrefix(e.Message, prefix))
}

// failedText returns msg, or when it is empty the newest Failed event
// about the container ("Error: ..."), whose text the kubelet also puts
// there.
func failedText(c container, msg string, evs *podEvents) string {
	if msg != "" {
		return evidence(msg)
	}
	e, ok := evs.containerEvent(c, func(m string) bool {
		return strings.HasPrefix(m, "Error: ") && !strings.HasPrefix(m, "Error: ErrImagePull") && !strings.HasPrefix(m, "Error: ImagePullBackOff")
	}, "Failed")
	if !ok {
		return ""
	}
	return evidence(e.Message)
}

// killedByProbe finds a container restarted by its liveness or startup
// probe: the kubelet kills it (exit 137 or 143, reason Error) and says why
// only in an Unhealthy event. Between kills the container may look Ready.
func killedByProbe(c container, evs *podEvents, opts DiagnoseOptions) (problem, bool) {
	cs := c.status
	if cs.RestartCount == 0 {
		return problem{}, false
	}
	e, ok := evs.containerEvent(c, func(m string) bool {
		return strings.HasPrefix(m, "Liveness probe") || strings.HasPrefix(m, "Startup probe")
	}, "Unhealthy")
	if !ok {
		return problem{}, false
	}
	if t := cs.LastTerminationState.Terminated; t != nil && !since(e, t.StartedAt.Time) {
		return problem{}, false // a failure before the last run started
	}
	probe := "liveness"
	if strings.HasPrefix(e.Message, "Startup") {
		probe = "startup"
	}
	crashing := cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	return problem{
		cause:    ProbeFailing,
		detail:   fmt.Sprintf("%s restarted by its %s probe (%s): %s", c.label(), probe, restarts(cs), probeOutput(e.Message)),
		restarts: cs.RestartCount,
		certain:  crashing && cs.RestartCount >= opts.RestartThreshold,
	}, true
}

// unready says why a running container is not ready: the newest failed
// probe's output or, without one, the probe the spec sets.
func unready(c container, evs *podEvents) string {
	started := c.status.Started == nil || *c.status.Started
	kind, prefix := "readiness", "Readiness probe"
	if !started {
		kind, prefix = "startup", "Startup probe"
	}
	if e, ok := evs.containerEvent(c, func(m string) bool { return strings.HasPrefix(m, prefix) }, "Unhealthy"); ok {
		return "running but not ready (" + probeOutput(e.Message) + ")"
	}
	if c.spec != nil {
		p := c.spec.ReadinessProbe
		if !started {
			p = c.spec.StartupProbe
		}
		if p != nil {
			return "running but not ready (" + describeProbe(kind, p) + " not passing)"
		}
	}
	return "running but not ready"
}

// notReady explains a running pod that is not Ready although no container
// reports a problem: a readiness gate not yet True, or a probe at pod
// level.
func notReady(pod *corev1.Pod, evs *podEvents) problem {
	for _, g := range pod.Spec.ReadinessGates {
		if c, ok := podCondition(pod, g.ConditionType); !ok || c.Status != corev1.ConditionTrue {
			return problem{cause: ProbeFailing, detail: fmt.Sprintf("running but readiness gate %s is not True", g.ConditionType)}
		}
	}
	detail := "running but not ready"
	if e, ok := evs.newest(nil, "Unhealthy"); ok {
		detail += " (" + probeOutput(e.Message) + ")"
	}
	return problem{cause: ProbeFailing, detail: detail}
}

// recentOOM finds a container of a ready pod that was OOM-killed within the
// recent window: it restarted and looks healthy, but it will be killed
// again, so it is certain trouble.
func recentOOM(c container, opts DiagnoseOptions) (problem, bool) {
	cs := c.status
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
		detail: fmt.Sprintf("%s OOMKilled at %s (exit %d, %s)", c.label(), t.FinishedAt.UTC().Format(time.RFC3339),
			t.ExitCode, restarts(cs)),
		restarts:  cs.RestartCount,
		certain:   true,
		container: c.name,
	}, true
}

// restarts says "4 restarts".
func restarts(cs corev1.ContainerStatus) string {
	return fmt.Sprintf("%d %s", cs.RestartCount, plural(int64(cs.RestartCount), "restart", "restarts"))
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
