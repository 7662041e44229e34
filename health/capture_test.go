package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// TestCaptureFixtures writes the fixtures in testdata from the test control
// plane: every object there was made by a real apiserver and its
// controllers (or, where no controller runs here, such as a load balancer,
// with a status written through the status subresource, as the missing
// controller would). It only runs on request:
//
//	BATON_CAPTURE_FIXTURES=1 go test -run TestCaptureFixtures ./health/
//
// Names of ReplicaSets and pods are random, so the table tests match
// messages with patterns.
func TestCaptureFixtures(t *testing.T) {
	if os.Getenv("BATON_CAPTURE_FIXTURES") == "" {
		t.Skip("set BATON_CAPTURE_FIXTURES=1 to capture testdata from the test control plane")
	}
	cp := &capturer{kube: env.Clientset(t), dyn: env.Dynamic(t)}
	for _, dir := range []string{"status", "diagnose"} {
		if err := os.MkdirAll(filepath.Join("testdata", dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("workloads", cp.workloads)
	t.Run("failures", cp.failures)
	t.Run("others", cp.others)
	t.Run("custom", cp.custom)
}

type capturer struct {
	kube kubernetes.Interface
	dyn  dynamic.Interface
}

var (
	gvrDeployment  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrStatefulSet = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	gvrDaemonSet   = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}
	gvrReplicaSet  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	gvrPod         = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	gvrJob         = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	gvrCronJob     = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "cronjobs"}
	gvrPVC         = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	gvrService     = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	gvrConfigMap   = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrNamespace   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrCRD         = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrAPIService  = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}
	gvrPDB         = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}
	gvrHPA         = schema.GroupVersionResource{Group: "autoscaling", Version: "v2", Resource: "horizontalpodautoscalers"}
	gvrWidget      = schema.GroupVersionResource{Group: "fixtures.baton.dev", Version: "v1", Resource: "widgets"}
)

// until polls cond every 100 ms until it holds or a minute passes. Capture
// is a tool, not a test of timing: polling with a deadline is enough.
func until(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (c *capturer) get(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if ns != "" {
		ri = c.dyn.Resource(gvr).Namespace(ns)
	}
	u, err := ri.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return u
}

// waitObject polls the object until ok holds and returns it.
func (c *capturer) waitObject(t *testing.T, gvr schema.GroupVersionResource, ns, name, what string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	var got *unstructured.Unstructured
	until(t, fmt.Sprintf("%s %s/%s: %s", gvr.Resource, ns, name, what), func(ctx context.Context) (bool, error) {
		var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
		if ns != "" {
			ri = c.dyn.Resource(gvr).Namespace(ns)
		}
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		got = u
		return ok(u), nil
	})
	return got
}

func statusIs(s Status) func(*unstructured.Unstructured) bool {
	return func(u *unstructured.Unstructured) bool { return Compute(u).Status == s }
}

// save writes objects to testdata/<file>.yaml, without managedFields.
func save(t *testing.T, file string, objs ...*unstructured.Unstructured) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# Captured from the test control plane by TestCaptureFixtures (capture_test.go).\n")
	for i, u := range objs {
		u = u.DeepCopy()
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		data, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatalf("marshal %s: %v", file, err)
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(data)
	}
	path := filepath.Join("testdata", file+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// saveCase writes obj and the evidence a Finder gathers for it.
func (c *capturer) saveCase(t *testing.T, file string, obj *unstructured.Unstructured) {
	t.Helper()
	ev, err := NewFinder(NewClusterReader(c.kube)).Evidence(t.Context(), obj)
	if err != nil {
		t.Fatalf("evidence for %s: %v", file, err)
	}
	objs := []*unstructured.Unstructured{obj}
	if ev.ReplicaSet != nil {
		objs = append(objs, typed(t, ev.ReplicaSet, "apps/v1", "ReplicaSet"))
	}
	for i := range ev.Pods {
		objs = append(objs, typed(t, &ev.Pods[i], "v1", "Pod"))
	}
	for i := range ev.Events {
		objs = append(objs, typed(t, &ev.Events[i], "v1", "Event"))
	}
	save(t, file, objs...)
}

// evidence gathers what saveCase would save, for capture conditions.
func (c *capturer) evidence(ctx context.Context, gvr schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, Evidence, bool) {
	u, err := c.dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, Evidence{}, false
	}
	ev, err := NewFinder(NewClusterReader(c.kube)).Evidence(ctx, u)
	if err != nil {
		return nil, Evidence{}, false
	}
	return u, ev, true
}

func typed(t *testing.T, obj runtime.Object, apiVersion, kind string) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	return u
}

func create(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string, manifest string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	u := &unstructured.Unstructured{Object: m}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	out, err := ri.Create(t.Context(), u, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s: %v", gvr.Resource, u.GetName(), err)
	}
	return out
}

// podsShowFailure reports whether every pod of the rollout has its container
// statuses and a Warning event from kwok's failure stage.
func podsShowFailure(ev Evidence, want int) bool {
	if len(ev.Pods) < want {
		return false
	}
	withEvent := map[string]bool{}
	for _, e := range ev.Events {
		if e.InvolvedObject.Kind == "Pod" {
			withEvent[e.InvolvedObject.Name] = true
		}
	}
	for _, p := range ev.Pods {
		if len(p.Status.ContainerStatuses) == 0 || !withEvent[p.Name] {
			return false
		}
	}
	return true
}

func (c *capturer) workloads(t *testing.T) {
	ns := namespace(t, c.kube)
	createDeployment(t, c.kube, deployment(ns, "api", 3, ""))
	save(t, "status/deployment-current", c.waitObject(t, gvrDeployment, ns, "api", "Current", statusIs(Current)))

	createDeployment(t, c.kube, deployment(ns, "warming", 2, testenv.FailNotReady))
	save(t, "status/deployment-progressing", c.waitObject(t, gvrDeployment, ns, "warming", "2 updated", func(u *unstructured.Unstructured) bool {
		return intOr(u, 0, "status", "updatedReplicas") == 2 && intOr(u, 0, "status", "replicas") == 2
	}))

	paused := deployment(ns, "paused", 1, "")
	paused.Spec.Paused = true
	createDeployment(t, c.kube, paused)
	save(t, "status/deployment-paused", c.waitObject(t, gvrDeployment, ns, "paused", "observed", func(u *unstructured.Unstructured) bool {
		_, ok := intField(u, "status", "observedGeneration")
		return ok
	}))

	create(t, c.dyn, gvrStatefulSet, ns, statefulSet("web", 2, "", 0))
	save(t, "status/statefulset-current", c.waitObject(t, gvrStatefulSet, ns, "web", "Current", statusIs(Current)))

	create(t, c.dyn, gvrStatefulSet, ns, statefulSet("db", 2, "", 1))
	c.waitObject(t, gvrStatefulSet, ns, "db", "Current", statusIs(Current))
	patch := `{"spec":{"template":{"metadata":{"labels":{"version":"2"}}}}}`
	if _, err := c.dyn.Resource(gvrStatefulSet).Namespace(ns).Patch(t.Context(), "db", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	save(t, "status/statefulset-partition", c.waitObject(t, gvrStatefulSet, ns, "db", "1 updated above partition", func(u *unstructured.Unstructured) bool {
		return u.GetGeneration() == intOr(u, 0, "status", "observedGeneration") &&
			intOr(u, 0, "status", "updatedReplicas") == 1 && intOr(u, 0, "status", "readyReplicas") == 2
	}))

	create(t, c.dyn, gvrStatefulSet, ns, statefulSet("queue", 2, testenv.FailNotReady, 0))
	save(t, "status/statefulset-not-ready", c.waitObject(t, gvrStatefulSet, ns, "queue", "first pod created", func(u *unstructured.Unstructured) bool {
		return intOr(u, 0, "status", "replicas") == 1
	}))

	create(t, c.dyn, gvrDaemonSet, ns, `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: registry.example/agent:1.0}]}
`)
	save(t, "status/daemonset-current", c.waitObject(t, gvrDaemonSet, ns, "agent", "Current", statusIs(Current)))

	create(t, c.dyn, gvrPod, ns, `
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec: {containers: [{name: solo, image: registry.example/solo:1.0}]}
`)
	save(t, "status/pod-running", c.waitObject(t, gvrPod, ns, "solo", "Current", statusIs(Current)))

	create(t, c.dyn, gvrPod, ns, `
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec: {containers: [{name: huge, image: registry.example/huge:1.0, resources: {requests: {cpu: "1000"}}}]}
`)
	save(t, "status/pod-unschedulable", c.waitObject(t, gvrPod, ns, "huge", "unschedulable", func(u *unstructured.Unstructured) bool {
		cond, ok := findCondition(u, "PodScheduled")
		return ok && cond.Status == "False"
	}))

	// kwok does not evict pods; the status an eviction leaves is written
	// through the status subresource, with kwok told to keep out.
	create(t, c.dyn, gvrPod, ns, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: evicted, labels: {%q: "true"}}
spec: {containers: [{name: evicted, image: registry.example/evicted:1.0}]}
`, testenv.ManualStatusLabel))
	c.writePodStatus(t, ns, "evicted", func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.Reason = "Evicted"
		p.Status.Message = "The node was low on resource: memory."
	})
	save(t, "status/pod-failed", c.get(t, gvrPod, ns, "evicted"))

	create(t, c.dyn, gvrJob, ns, `
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: migrate, image: registry.example/migrate:1.0}]}
`)
	save(t, "status/job-complete", c.waitObject(t, gvrJob, ns, "migrate", "Current", statusIs(Current)))

	create(t, c.dyn, gvrJob, ns, fmt.Sprintf(`
apiVersion: batch/v1
kind: Job
metadata: {name: seed}
spec:
  template:
    metadata: {labels: {%q: not-ready}}
    spec: {restartPolicy: Never, containers: [{name: seed, image: registry.example/seed:1.0}]}
`, testenv.FailureLabel))
	save(t, "status/job-running", c.waitObject(t, gvrJob, ns, "seed", "1 active", func(u *unstructured.Unstructured) bool {
		return intOr(u, 0, "status", "active") == 1
	}))

	create(t, c.dyn, gvrCronJob, ns, `
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 1 1 *"
  jobTemplate:
    spec:
      template:
        spec: {restartPolicy: Never, containers: [{name: nightly, image: registry.example/nightly:1.0}]}
`)
	save(t, "status/cronjob", c.get(t, gvrCronJob, ns, "nightly"))

	create(t, c.dyn, gvrPDB, ns, `
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api}
spec: {minAvailable: 2, selector: {matchLabels: {app: api}}}
`)
	save(t, "status/pdb", c.waitObject(t, gvrPDB, ns, "api", "observed", func(u *unstructured.Unstructured) bool {
		return intOr(u, 0, "status", "currentHealthy") == 3
	}))

	// The HPA controller first writes status after its sync period (15 s).
	create(t, c.dyn, gvrHPA, ns, `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 3
  maxReplicas: 6
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
`)
	save(t, "status/hpa", c.waitObject(t, gvrHPA, ns, "api", "conditions", func(u *unstructured.Unstructured) bool {
		return len(conditions(u)) > 0
	}))
	create(t, c.dyn, gvrHPA, ns, `
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: ghost}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: ghost}
  minReplicas: 1
  maxReplicas: 2
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}}]
`)
	save(t, "status/hpa-no-target", c.waitObject(t, gvrHPA, ns, "ghost", "conditions", func(u *unstructured.Unstructured) bool {
		return len(conditions(u)) > 0
	}))
}

// statefulSet is a StatefulSet manifest with a rolling-update partition.
func statefulSet(name string, replicas int, failure string, partition int) string {
	labels := fmt.Sprintf("{app: %s}", name)
	if failure != "" {
		labels = fmt.Sprintf("{app: %s, %q: %s}", name, testenv.FailureLabel, failure)
	}
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: %[1]s}
spec:
  serviceName: %[1]s
  replicas: %[2]d
  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: %[4]d}}
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: %[3]s}
    spec: {containers: [{name: %[1]s, image: registry.example/%[1]s:1.0}]}
`, name, replicas, labels, partition)
}

// writePodStatus writes a pod's status once it is bound (see the shared
// helper), failing the capture on error.
func (c *capturer) writePodStatus(t *testing.T, ns, name string, edit func(*corev1.Pod)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := writePodStatus(ctx, c.kube, ns, name, edit); err != nil {
		t.Fatal(err)
	}
}

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
		cond, hasCond := findCondition(u, "ReplicaFailure")
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

func (c *capturer) others(t *testing.T) {
	ns := namespace(t, c.kube)
	save(t, "status/namespace-active", c.get(t, gvrNamespace, "", ns))
	save(t, "status/apiservice-local", c.get(t, gvrAPIService, "", "v1.apps"))

	create(t, c.dyn, gvrService, ns, `
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{port: 80}]}
`)
	save(t, "status/service-clusterip", c.get(t, gvrService, ns, "api"))
	create(t, c.dyn, gvrService, ns, `
apiVersion: v1
kind: Service
metadata: {name: edge}
spec: {type: LoadBalancer, selector: {app: api}, ports: [{port: 443}]}
`)
	save(t, "status/service-lb-pending", c.get(t, gvrService, ns, "edge"))
	// No load-balancer controller runs here; the address is written as
	// one would.
	svc, err := c.kube.CoreV1().Services(ns).Get(t.Context(), "edge", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.10"}}
	if _, err := c.kube.CoreV1().Services(ns).UpdateStatus(t.Context(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	save(t, "status/service-lb-ready", c.get(t, gvrService, ns, "edge"))

	create(t, c.dyn, gvrPVC, ns, `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: scratch}
spec: {storageClassName: missing, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`)
	save(t, "status/pvc-pending", c.get(t, gvrPVC, ns, "scratch"))
	pv := create(t, c.dyn, schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}, "", fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolume
metadata: {name: %s-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/data}
  claimRef: {namespace: %s, name: data}
`, ns, ns))
	t.Cleanup(func() {
		_ = c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}).Delete(context.Background(), pv.GetName(), metav1.DeleteOptions{})
	})
	create(t, c.dyn, gvrPVC, ns, fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec: {storageClassName: "", volumeName: %s, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`, pv.GetName()))
	save(t, "status/pvc-bound", c.waitObject(t, gvrPVC, ns, "data", "Bound", statusIs(Current)))

	create(t, c.dyn, gvrConfigMap, ns, `
apiVersion: v1
kind: ConfigMap
metadata: {name: held, finalizers: [fixtures.baton.dev/hold]}
data: {a: b}
`)
	if err := c.dyn.Resource(gvrConfigMap).Namespace(ns).Delete(t.Context(), "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	save(t, "status/configmap-terminating", c.get(t, gvrConfigMap, ns, "held"))
	patch := `{"metadata":{"finalizers":null}}`
	if _, err := c.dyn.Resource(gvrConfigMap).Namespace(ns).Patch(t.Context(), "held", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := create(t, c.dyn, gvrConfigMap, ns, `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: info}
`)
	save(t, "status/configmap", cm)
}

// custom captures objects of a kind Compute has no function for: a CRD
// with a status subresource, whose status is written as its controller
// would.
func (c *capturer) custom(t *testing.T) {
	crd := create(t, c.dyn, gvrCRD, "", `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.fixtures.baton.dev}
spec:
  group: fixtures.baton.dev
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`)
	t.Cleanup(func() {
		_ = c.dyn.Resource(gvrCRD).Delete(context.Background(), crd.GetName(), metav1.DeleteOptions{})
	})
	save(t, "status/crd-established", c.waitObject(t, gvrCRD, "", crd.GetName(), "Established", statusIs(Current)))
	// Discovery must serve the new resource before widgets can be created.
	until(t, "widgets served", func(ctx context.Context) (bool, error) {
		_, err := c.dyn.Resource(gvrWidget).Namespace("default").List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})

	ns := namespace(t, c.kube)
	widget := func(name string, status map[string]any) *unstructured.Unstructured {
		u := create(t, c.dyn, gvrWidget, ns, fmt.Sprintf(`
apiVersion: fixtures.baton.dev/v1
kind: Widget
metadata: {name: %s}
spec: {size: 1}
`, name))
		if status == nil {
			return u
		}
		u.Object["status"] = status
		out, err := c.dyn.Resource(gvrWidget).Namespace(ns).UpdateStatus(t.Context(), u, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("write status of widget %s: %v", name, err)
		}
		return out
	}
	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg,
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	}
	save(t, "status/custom-no-status", widget("plain", nil))
	save(t, "status/custom-ready", widget("ready", map[string]any{
		"observedGeneration": int64(1), "conditions": []any{cond("Ready", "True", "Reconciled", "all good")}}))
	save(t, "status/custom-not-ready", widget("waiting", map[string]any{
		"observedGeneration": int64(1), "conditions": []any{cond("Ready", "False", "Provisioning", "waiting for the volume")}}))
	save(t, "status/custom-stalled", widget("stuck", map[string]any{
		"observedGeneration": int64(1), "conditions": []any{
			cond("Ready", "False", "InvalidSpec", "size must be even"),
			cond("Stalled", "True", "InvalidSpec", "size must be even")}}))
	save(t, "status/custom-succeeded-false", widget("build", map[string]any{
		"conditions": []any{cond("Succeeded", "False", "BuildFailed", "step compile exited 2")}}))
	save(t, "status/custom-available", widget("pool", map[string]any{
		"conditions": []any{cond("Available", "True", "MinimumReplicasAvailable", "")}}))

	behind := widget("behind", map[string]any{
		"observedGeneration": int64(1), "conditions": []any{cond("Ready", "True", "Reconciled", "")}})
	_ = unstructured.SetNestedField(behind.Object, int64(2), "spec", "size")
	updated, err := c.dyn.Resource(gvrWidget).Namespace(ns).Update(t.Context(), behind, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	save(t, "status/custom-generation-behind", updated)
}
