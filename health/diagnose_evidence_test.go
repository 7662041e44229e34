package health

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestDiagnoseEvidence covers what the corpus of real pods does not show:
// volumes that do not mount, events about another container or an earlier
// pod of the same name, scheduling gates, readiness gates and the kubelet
// refusing a pod. Statuses and event texts are in the kubelet's,
// scheduler's and attach-detach controller's words.
func TestDiagnoseEvidence(t *testing.T) {
	at := func(min int) metav1.Time {
		return metav1.NewTime(time.Date(2026, 5, 1, 12, min, 0, 0, time.UTC))
	}
	event := func(reason, fieldPath, msg string, min int) corev1.Event {
		return corev1.Event{Type: corev1.EventTypeWarning, Reason: reason, Message: msg, LastTimestamp: at(min),
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: "web-0", UID: "uid-2", FieldPath: fieldPath}}
	}
	creating := func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Status.Phase = corev1.PodPending
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Image: "shop/web:1",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	}
	running := func(p *corev1.Pod) {
		p.Spec.NodeName = "node-1"
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	}
	cases := []struct {
		name   string
		pod    func(*corev1.Pod)
		events []corev1.Event
		cause  Cause
		detail string
	}{
		{
			name: "missing configmap volume", pod: creating,
			events: []corev1.Event{event("FailedMount", "", `MountVolume.SetUp failed for volume "config" : configmap "web-config" not found`, 1)},
			cause:  ConfigError,
			detail: `volumes not mounted (FailedMount): MountVolume.SetUp failed for volume "config" : configmap "web-config" not found`,
		},
		{
			name: "volume attached to another node, newest event first", pod: creating,
			events: []corev1.Event{
				event("FailedMount", "", "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data]: timed out waiting for the condition", 1),
				event("FailedAttachVolume", "", `Multi-Attach error for volume "pvc-3f1c" Volume is already exclusively attached to one node and can't be attached to another`, 3),
			},
			cause:  Volume,
			detail: `volumes not mounted (FailedAttachVolume): Multi-Attach error for volume "pvc-3f1c" Volume is already exclusively attached to one node and can't be attached to another`,
		},
		{
			name: "events of an earlier pod of the same name are not evidence", pod: creating,
			events: []corev1.Event{func() corev1.Event {
				e := event("FailedMount", "", `MountVolume.SetUp failed for volume "config" : configmap "web-config" not found`, 1)
				e.InvolvedObject.UID = "uid-1"
				return e
			}()},
		},
		{
			name: "probe output of the container, not of its sidecar",
			pod: func(p *corev1.Pod) {
				running(p)
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "proxy", Image: "envoy:1"})
				p.Status.ContainerStatuses = []corev1.ContainerStatus{
					{Name: "proxy", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
					{Name: "web", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				}
			},
			events: []corev1.Event{
				event("Unhealthy", "spec.containers{web}", "Readiness probe failed: HTTP probe failed with statuscode: 503", 1),
				event("Unhealthy", "spec.containers{proxy}", "Readiness probe failed: Get \"http://10.1.0.7:15021/healthz/ready\": dial tcp 10.1.0.7:15021: connect: connection refused", 2),
			},
			cause:  ProbeFailing,
			detail: "container web running but not ready (Readiness probe failed: HTTP probe failed with statuscode: 503)",
		},
		{
			name: "a liveness failure before the last restart did not cause it",
			pod: func(p *corev1.Pod) {
				running(p)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", RestartCount: 2,
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 2, Reason: "Error", StartedAt: at(10), FinishedAt: at(11)}}}}
			},
			events: []corev1.Event{event("Unhealthy", "spec.containers{web}", "Liveness probe failed: HTTP probe failed with statuscode: 500", 5)},
			cause:  CrashLoop,
			detail: "container web CrashLoopBackOff (last exit 2 Error, 2 restarts)",
		},
		{
			name: "waiting for scheduling gates is no failure",
			pod: func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodPending
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: corev1.PodReasonSchedulingGated, Message: "Scheduling is blocked due to non-empty scheduling gates"}}
			},
			detail: "waiting for scheduling gates: Scheduling is blocked due to non-empty scheduling gates",
		},
		{
			name: "a readiness gate not yet true",
			pod: func(p *corev1.Pod) {
				running(p)
				p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "target-health.elbv2.k8s.aws/web"}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "web", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			},
			cause:  ProbeFailing,
			detail: "running but readiness gate target-health.elbv2.k8s.aws/web is not True",
		},
		{
			name: "the kubelet refuses the pod",
			pod: func(p *corev1.Pod) {
				p.Spec.NodeName = "node-1"
				p.Status.Phase = corev1.PodFailed
				p.Status.Reason = "OutOfcpu"
				p.Status.Message = "Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 7800, capacity: 8000"
			},
			detail: "failed: OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu, requested: 4000, used: 7800, capacity: 8000",
		},
		{
			name: "eviction told only in the DisruptionTarget condition",
			pod: func(p *corev1.Pod) {
				p.Spec.NodeName = "node-1"
				p.Status.Phase = corev1.PodFailed
				p.Status.Reason = "Evicted"
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "TerminationByKubelet", Message: "The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 512Mi. "}}
			},
			cause:  Evicted,
			detail: "evicted: The node was low on resource: ephemeral-storage. Threshold quantity: 1Gi, available: 512Mi.",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "shop", UID: types.UID("uid-2")},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "shop/web:1"}}},
			}
			tc.pod(pod)
			p, ok := inspectPod(pod, tc.events, DiagnoseOptions{}.withDefaults(), true)
			if tc.detail == "" {
				if ok {
					t.Errorf("found %q %q, want nothing", p.cause, p.detail)
				}
				return
			}
			if !ok || p.cause != tc.cause || p.detail != tc.detail {
				t.Errorf("found %v %q %q\nwant %q %q", ok, p.cause, p.detail, tc.cause, tc.detail)
			}
		})
	}
}
