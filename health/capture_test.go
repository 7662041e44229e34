package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
// messages with patterns. docs/diagnosis.md quotes messages of some
// fixtures: after a capture, copy the new ones there (TestDiagnosisDoc
// prints them).
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
