package testenv

import (
	_ "embed"
	"time"
)

// stagesYAML is kwok's configuration: the node and pod lifecycles.
//
//go:embed stages.yaml
var stagesYAML []byte

// FailureLabel on a pod (put it in a workload's pod template) makes kwok give
// the pod the status of a real failure instead of Running and Ready. The
// statuses follow what real kubelets report (TestStagesLookReal compares
// them with the shared corpus of real pod statuses).
const FailureLabel = "testenv.baton.dev/failure"

// Values of FailureLabel.
const (
	// FailCrashLoop: Running, Ready=False, container waiting in
	// CrashLoopBackOff, last terminated with exit code 1 (reason Error),
	// 4 restarts, and a Warning BackOff event.
	FailCrashLoop = "crashloop"
	// FailOOMKilled: Running, Ready=False, container waiting in
	// CrashLoopBackOff after its last run was OOMKilled (exit 137),
	// 3 restarts, and a Warning BackOff event.
	FailOOMKilled = "oomkilled"
	// FailImagePull: Pending, container waiting in ErrImagePull with the
	// registry's refusal in the message (containerd's wording), then a
	// second later in ImagePullBackOff with `Back-off pulling image "X"`;
	// a Warning Failed event for each.
	FailImagePull = "imagepull"
	// FailNotReady: Running with its containers running, but never Ready
	// (a failing readiness probe), with a Warning Unhealthy event.
	FailNotReady = "not-ready"
	// FailSlowReady: like FailNotReady at first, then Ready after
	// SlowReadyDelay.
	FailSlowReady = "slow-ready"
)

// SlowReadyDelay is how long a FailSlowReady pod stays unready.
const SlowReadyDelay = 3 * time.Second

// ManualStatusLabel=true on an object makes kwok leave its status alone, so
// a test can write a status kwok does not simulate (for example a
// CreateContainerConfigError) through the status subresource.
const ManualStatusLabel = "testenv.baton.dev/manual-status"

// nodeAnnotation marks the nodes kwok manages.
const nodeAnnotation = "kwok.x-k8s.io/node"
