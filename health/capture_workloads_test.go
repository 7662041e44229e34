package health

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/statuscond"
	"github.com/baton-gitops/baton/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// workloads captures workloads and other kinds with a status function, in
// the states the Compute table tests need.
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
		cond, ok := statuscond.Find(u, "PodScheduled")
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
		return len(statuscond.All(u)) > 0
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
		return len(statuscond.All(u)) > 0
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

	// Storage classes whose provisioner never runs here: with
	// WaitForFirstConsumer the PV controller leaves a claim alone until a
	// pod uses it; with Immediate it hands the claim to the provisioner at
	// once, which it records in an annotation.
	gvrClass := schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}
	for _, mode := range []string{"WaitForFirstConsumer", "Immediate"} {
		class := create(t, c.dyn, gvrClass, "", fmt.Sprintf(`
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: %s-%s}
provisioner: example.com/never
volumeBindingMode: %s
`, ns, strings.ToLower(mode), mode))
		t.Cleanup(func() {
			_ = c.dyn.Resource(gvrClass).Delete(context.Background(), class.GetName(), metav1.DeleteOptions{})
		})
	}
	create(t, c.dyn, gvrPVC, ns, fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache}
spec: {storageClassName: %s-waitforfirstconsumer, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`, ns))
	create(t, c.dyn, gvrPVC, ns, fmt.Sprintf(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: logs}
spec: {storageClassName: %s-immediate, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
`, ns))
	save(t, "status/pvc-provisioning", c.waitObject(t, gvrPVC, ns, "logs", "handed to its provisioner", func(u *unstructured.Unstructured) bool {
		return u.GetAnnotations()[provisionerAnnotation] != ""
	}))
	// The controller says, in a Normal event, that it left the other one.
	until(t, "cache left for its first consumer", func(ctx context.Context) (bool, error) {
		evs, err := c.kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=cache,reason=WaitForFirstConsumer"})
		return err == nil && len(evs.Items) > 0, nil
	})
	save(t, "status/pvc-wait-for-consumer", c.get(t, gvrPVC, ns, "cache"))
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
