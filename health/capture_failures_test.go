package health

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/statuscond"
	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// failures captures rollouts that fail, with the evidence a Finder gathers,
// for the Diagnose table tests.
func (c *capturer) failures(t *testing.T) {
	ns := namespace(t, c.kube)
	for _, tc := range []struct{ name, failure string }{
		{"crashloop", testenv.FailCrashLoop},
		{"oomkilled", testenv.FailOOMKilled},
		{"imagepull", testenv.FailImagePull},
		{"not-ready", testenv.FailNotReady},
	} {
		createDeployment(t, c.kube, deployment(ns, tc.name, 3, tc.failure))
		until(t, tc.name+" pods failing", func(ctx context.Context) (bool, error) {
			_, ev, ok := c.evidence(ctx, gvrDeployment, ns, tc.name)
			if tc.failure == testenv.FailImagePull {
				// Past ErrImagePull, in the state such pods stay in.
				for i := range ev.Pods {
					if !waitingReason("ImagePullBackOff")(&ev.Pods[i]) {
						return false, nil
					}
				}
			}
			return ok && podsShowFailure(ev, 3), nil
		})
		c.saveCase(t, "diagnose/deployment-"+tc.name, c.get(t, gvrDeployment, ns, tc.name))
	}

	huge := deployment(ns, "huge", 2, "")
	huge.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1000")
	createDeployment(t, c.kube, huge)
	until(t, "huge pods unschedulable", func(ctx context.Context) (bool, error) {
		_, ev, ok := c.evidence(ctx, gvrDeployment, ns, "huge")
		if !ok || len(ev.Pods) < 2 {
			return false, nil
		}
		for i := range ev.Pods {
			if !unschedulable(&ev.Pods[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	c.saveCase(t, "diagnose/deployment-unschedulable", c.get(t, gvrDeployment, ns, "huge"))

	// Progress deadline: the controller gives up after 1 s without
	// progress; the pods never become Ready.
	late := deployment(ns, "late", 2, testenv.FailNotReady)
	late.Spec.ProgressDeadlineSeconds = new(int32(1))
	createDeployment(t, c.kube, late)
	until(t, "late deadline exceeded", func(ctx context.Context) (bool, error) {
		u, ev, ok := c.evidence(ctx, gvrDeployment, ns, "late")
		return ok && Compute(u).Status == Failed && podsShowFailure(ev, 2), nil
	})
	save(t, "status/deployment-deadline", c.get(t, gvrDeployment, ns, "late"))
	c.saveCase(t, "diagnose/deployment-deadline", c.get(t, gvrDeployment, ns, "late"))

	create(t, c.dyn, gvrStatefulSet, ns, statefulSet("cache", 2, testenv.FailCrashLoop, 0))
	until(t, "cache pod crash-looping", func(ctx context.Context) (bool, error) {
		_, ev, ok := c.evidence(ctx, gvrStatefulSet, ns, "cache")
		return ok && podsShowFailure(ev, 1), nil
	})
	c.saveCase(t, "diagnose/statefulset-crashloop", c.get(t, gvrStatefulSet, ns, "cache"))

	// A Job whose pod never finishes, stopped by its active deadline.
	create(t, c.dyn, gvrJob, ns, fmt.Sprintf(`
apiVersion: batch/v1
kind: Job
metadata: {name: report}
spec:
  activeDeadlineSeconds: 2
  template:
    metadata: {labels: {%q: not-ready}}
    spec: {restartPolicy: Never, containers: [{name: report, image: registry.example/report:1.0}]}
`, testenv.FailureLabel))
	job := c.waitObject(t, gvrJob, ns, "report", "Failed", statusIs(Failed))
	save(t, "status/job-failed", job)
	c.saveCase(t, "diagnose/job-failed", job)

	// CreateContainerConfigError: kwok does not simulate it, so the pod is
	// labelled for kwok to leave alone and given, through the status
	// subresource, the status a kubelet reports when the ConfigMap named in
	// envFrom does not exist.
	create(t, c.dyn, gvrPod, ns, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: app, labels: {%q: "true"}}
spec:
  containers:
  - name: app
    image: registry.example/app:1.0
    envFrom: [{configMapRef: {name: app-config}}]
`, testenv.ManualStatusLabel))
	c.writePodStatus(t, ns, "app", func(p *corev1.Pod) {
		now := metav1.Now()
		p.Status.Phase = corev1.PodPending
		p.Status.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [app]", LastTransitionTime: now},
			{Type: corev1.ContainersReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: now},
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name:  "app",
			Image: "registry.example/app:1.0",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason:  "CreateContainerConfigError",
				Message: `configmap "app-config" not found`,
			}},
		}}
	})
	c.saveCase(t, "diagnose/pod-configerror", c.get(t, gvrPod, ns, "app"))

	c.quota(t)
	c.recentOOM(t)

	// Pod security refuses a StatefulSet's pod; the controller says so in
	// a FailedCreate event on the StatefulSet.
	ns3 := namespace(t, c.kube)
	labelNamespace(t, c.kube, ns3, "pod-security.kubernetes.io/enforce", "restricted")
	create(t, c.dyn, gvrStatefulSet, ns3, statefulSet("db", 1, "", 0))
	until(t, "db refused", func(ctx context.Context) (bool, error) {
		u, ev, ok := c.evidence(ctx, gvrStatefulSet, ns3, "db")
		_, failed := latestEvent(ev.Events, "StatefulSet", "db", "FailedCreate")
		return ok && failed && Compute(u).Message == "0/1 pods created", nil
	})
	c.saveCase(t, "diagnose/statefulset-forbidden", c.get(t, gvrStatefulSet, ns3, "db"))
}

// quota captures pods refused by a ResourceQuota, for a Deployment and for
// a bare ReplicaSet.
func (c *capturer) quota(t *testing.T) {
	ns := namespace(t, c.kube)
	create(t, c.dyn, schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}, ns, `
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec: {hard: {pods: "1"}}
`)
	// The quota controller must have computed usage before admission
	// enforces it.
	until(t, "quota usage", func(ctx context.Context) (bool, error) {
		q, err := c.kube.CoreV1().ResourceQuotas(ns).Get(ctx, "pods", metav1.GetOptions{})
		return err == nil && q.Status.Used != nil, nil
	})
	createDeployment(t, c.kube, deployment(ns, "shop", 3, ""))
	until(t, "shop refused", func(ctx context.Context) (bool, error) {
		_, ev, ok := c.evidence(ctx, gvrDeployment, ns, "shop")
		if !ok || ev.ReplicaSet == nil {
			return false, nil
		}
		_, failed := latestEvent(ev.Events, "ReplicaSet", ev.ReplicaSet.Name, "FailedCreate")
		return failed && ev.ReplicaSet.Status.ReadyReplicas == 1, nil
	})
	save(t, "status/deployment-quota", c.get(t, gvrDeployment, ns, "shop"))
	c.saveCase(t, "diagnose/deployment-quota", c.get(t, gvrDeployment, ns, "shop"))

	ns2 := namespace(t, c.kube)
	create(t, c.dyn, schema.GroupVersionResource{Version: "v1", Resource: "resourcequotas"}, ns2, `
apiVersion: v1
kind: ResourceQuota
metadata: {name: pods}
spec: {hard: {pods: "0"}}
`)
	until(t, "quota usage", func(ctx context.Context) (bool, error) {
		q, err := c.kube.CoreV1().ResourceQuotas(ns2).Get(ctx, "pods", metav1.GetOptions{})
		return err == nil && q.Status.Used != nil, nil
	})
	create(t, c.dyn, gvrReplicaSet, ns2, `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: worker}
spec:
  replicas: 2
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec: {containers: [{name: worker, image: registry.example/worker:1.0}]}
`)
	until(t, "worker refused", func(ctx context.Context) (bool, error) {
		u, ev, ok := c.evidence(ctx, gvrReplicaSet, ns2, "worker")
		if !ok {
			return false, nil
		}
		_, failed := latestEvent(ev.Events, "ReplicaSet", "worker", "FailedCreate")
		cond, hasCond := statuscond.Find(u, "ReplicaFailure")
		return failed && hasCond && cond.Status == "True", nil
	})
	save(t, "status/replicaset-quota", c.get(t, gvrReplicaSet, ns2, "worker"))
	c.saveCase(t, "diagnose/replicaset-quota", c.get(t, gvrReplicaSet, ns2, "worker"))
}

// recentOOM captures a ready Deployment whose pods restarted after an OOM
// kill a minute ago: kwok leaves the labelled pods alone and their status
// is written as a kubelet would after the restart.
func (c *capturer) recentOOM(t *testing.T) {
	ns := namespace(t, c.kube)
	d := deployment(ns, "cart", 2, "")
	d.Spec.Template.Labels[testenv.ManualStatusLabel] = "true"
	createDeployment(t, c.kube, d)
	var pods []corev1.Pod
	until(t, "cart pods created", func(ctx context.Context) (bool, error) {
		list, err := c.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=cart"})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		return len(pods) == 2, nil
	})
	killed := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	for _, p := range pods {
		c.writePodStatus(t, ns, p.Name, func(p *corev1.Pod) {
			now := metav1.Now()
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{
				Name:         "cart",
				Image:        "registry.example/cart:1.0",
				Ready:        true,
				RestartCount: 1,
				State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: killed}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
					ExitCode: 137, Reason: "OOMKilled", StartedAt: metav1.NewTime(killed.Add(-time.Hour)), FinishedAt: killed,
				}},
			}}
		})
	}
	c.saveCase(t, "diagnose/deployment-recent-oom", c.waitObject(t, gvrDeployment, ns, "cart", "Current", statusIs(Current)))
}
