package health

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Cause names why an object is not ready, in a form fit for a metric label
// or an alert rule: lowercase, stable, one word.
type Cause string

const (
	// NoCause means no cause was found (the object may simply be slow).
	NoCause Cause = ""
	// CrashLoop: a container keeps exiting and is in CrashLoopBackOff.
	CrashLoop Cause = "crashloop"
	// OOMKilled: a container was killed for exceeding its memory limit.
	OOMKilled Cause = "oomkilled"
	// ImagePull: an image cannot be pulled (ErrImagePull, ImagePullBackOff,
	// InvalidImageName).
	ImagePull Cause = "imagepull"
	// ConfigError: the pod's configuration cannot work as written: a
	// ConfigMap, Secret or key it references is missing
	// (CreateContainerConfigError, or a volume that fails to mount for that
	// reason), a security context the image cannot satisfy, or a command the
	// runtime cannot start (RunContainerError, CreateContainerError).
	ConfigError Cause = "configerror"
	// Volume: a volume cannot be attached or mounted for another reason
	// than a missing ConfigMap or Secret (FailedMount, FailedAttachVolume:
	// a storage driver error, a volume attached to another node).
	Volume Cause = "volume"
	// ProbeFailing: containers run but the pod never becomes Ready.
	ProbeFailing Cause = "probe"
	// Unschedulable: the scheduler finds no node (resources, taints,
	// affinity, unbound claims), from the pod's PodScheduled condition or,
	// where the status is silent, its FailedScheduling events.
	Unschedulable Cause = "unschedulable"
	// Evicted: the kubelet evicted a pod under node pressure (memory, disk,
	// PIDs); the message names the pressure and the containers' usage.
	Evicted Cause = "evicted"
	// QuotaExceeded: a ResourceQuota refuses the workload's pods; the
	// message names the quota.
	QuotaExceeded Cause = "quota"
	// Forbidden: admission (a webhook, a ValidatingAdmissionPolicy, pod
	// security, a LimitRange) refuses the workload's pods; the message
	// names the refusing policy.
	Forbidden Cause = "forbidden"
	// DeadlineExceeded: a Deployment passed its progress deadline with no
	// more specific cause found.
	DeadlineExceeded Cause = "deadline"
	// JobFailed: a Job failed (backoff limit, active deadline) with no more
	// specific cause found.
	JobFailed Cause = "jobfailed"
	// TimedOut: a wait reached its timeout with no more specific cause
	// found. Only a Report carries it, never one object.
	TimedOut Cause = "timeout"
)

// Causes lists every cause except NoCause, for pre-registering metric
// label values.
func Causes() []Cause {
	return []Cause{CrashLoop, OOMKilled, ImagePull, ConfigError, Volume, ProbeFailing, Unschedulable,
		Evicted, QuotaExceeded, Forbidden, DeadlineExceeded, JobFailed, TimedOut}
}

// rank orders causes by how directly they tell what to fix: a broken image
// or config beats a crash, which beats a refused pod, which beats a pod the
// scheduler cannot place, and so on. An eviction comes after every problem
// of a live pod: the controller replaces an evicted pod, and what holds the
// replacement back is the news. Lower is more important.
func (c Cause) rank() int {
	switch c {
	case ImagePull:
		return 0
	case ConfigError:
		return 1
	case Volume:
		return 2
	case OOMKilled:
		return 3
	case CrashLoop:
		return 4
	case QuotaExceeded, Forbidden:
		return 5
	case Unschedulable:
		return 6
	case ProbeFailing:
		return 7
	case Evicted:
		return 8
	case DeadlineExceeded, JobFailed:
		return 9
	case TimedOut:
		return 10
	}
	return 11
}

// Diagnosis is what Diagnose concludes about one object.
type Diagnosis struct {
	// Cause is the most important cause found, or NoCause.
	Cause Cause
	// Message names the object and, when one was found, the pod and
	// container at fault, e.g. "Deployment shop/api: 1/3 updated pods
	// ready; pod api-7d9f8-x2k4p: container api OOMKilled (exit 137, 4
	// restarts)".
	Message string
	// Certain means the object will not become ready without a change:
	// its status is Failed, an image cannot be pulled, or a container was
	// killed (crash, OOM) at least the restart threshold times. A wait can
	// stop early on it.
	Certain bool
}

// Evidence is what the cluster holds about an object's current rollout,
// gathered by a Finder and read by Diagnose.
type Evidence struct {
	// ReplicaSet is a Deployment's newest ReplicaSet; nil for other kinds.
	ReplicaSet *appsv1.ReplicaSet
	// Pods are the pods of the current rollout: the newest ReplicaSet's for
	// a Deployment, the controller's own for other workloads, the pod
	// itself for a Pod. Diagnose reads their metadata (name, namespace,
	// uid, deletionTimestamp), their whole status, and of their spec only
	// nodeName, readinessGates, the claim names of volumes, and the name,
	// image and readiness and startup probes of containers and init
	// containers: a cache may drop the rest.
	Pods []corev1.Pod
	// Events are events about the object, its ReplicaSet and its pods, in
	// any order. Only Warning events with one of EventReasons are read;
	// where the status is silent they carry the evidence (a scheduler's
	// message, a probe's output, a registry's error, a mount failure, a
	// refused pod).
	Events []corev1.Event
}

// EventReasons lists the reasons of the Warning events Diagnose reads, for
// a reader that wants to keep only those.
func EventReasons() []string {
	return []string{"FailedScheduling", "Failed", "BackOff", "Unhealthy", "FailedMount", "FailedAttachVolume",
		"FailedCreatePodSandBox", "Evicted", "FailedCreate"}
}

// DiagnoseOptions tune Diagnose. The zero value is the default.
type DiagnoseOptions struct {
	// RestartThreshold is how many restarts make a crash-looping or
	// OOM-killed container a certain failure. Default 3.
	RestartThreshold int32
	// Now is the time of the diagnosis, for judging what is recent. Zero
	// disables the rule that needs it: an OOM kill of a pod of a ready
	// workload within RecentWindow.
	Now time.Time
	// RecentWindow is how long after an OOM kill a ready workload still
	// counts as degraded by it. Default 10 minutes.
	RecentWindow time.Duration
}

// DefaultRestartThreshold is RestartThreshold's default.
const DefaultRestartThreshold = 3

// DefaultRecentWindow is RecentWindow's default.
const DefaultRecentWindow = 10 * time.Minute

func (o DiagnoseOptions) withDefaults() DiagnoseOptions {
	if o.RestartThreshold <= 0 {
		o.RestartThreshold = DefaultRestartThreshold
	}
	if o.RecentWindow <= 0 {
		o.RecentWindow = DefaultRecentWindow
	}
	return o
}
