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
	// ConfigError: a container cannot be created because a ConfigMap or
	// Secret it references is missing (CreateContainerConfigError, or a
	// volume that fails to mount for that reason).
	ConfigError Cause = "configerror"
	// ProbeFailing: containers run but the pod never becomes Ready.
	ProbeFailing Cause = "probe"
	// Unschedulable: the scheduler finds no node (resources, taints,
	// affinity).
	Unschedulable Cause = "unschedulable"
	// QuotaExceeded: a ResourceQuota refuses the workload's pods.
	QuotaExceeded Cause = "quota"
	// Forbidden: admission (a webhook, a policy, pod security) or RBAC
	// refuses the workload's pods.
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
	return []Cause{CrashLoop, OOMKilled, ImagePull, ConfigError, ProbeFailing, Unschedulable,
		QuotaExceeded, Forbidden, DeadlineExceeded, JobFailed, TimedOut}
}

// rank orders causes by how directly they tell what to fix: a broken image
// or config beats a crash, which beats a refused pod, which beats a pod the
// scheduler cannot place, and so on. Lower is more important.
func (c Cause) rank() int {
	switch c {
	case ImagePull:
		return 0
	case ConfigError:
		return 1
	case OOMKilled:
		return 2
	case CrashLoop:
		return 3
	case QuotaExceeded, Forbidden:
		return 4
	case Unschedulable:
		return 5
	case ProbeFailing:
		return 6
	case DeadlineExceeded, JobFailed:
		return 7
	case TimedOut:
		return 8
	}
	return 9
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
	// itself for a Pod.
	Pods []corev1.Pod
	// Events are events about the object, its ReplicaSet and its pods.
	// Only Warning events are read.
	Events []corev1.Event
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
