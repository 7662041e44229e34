package health

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestRefusedPodsNamePolicy: a controller whose pods the apiserver refuses
// is named with the refusing policy, for every controller kind: the real
// admission plugins (PodSecurity, ResourceQuota, LimitRange,
// ValidatingAdmissionPolicy, ServiceAccount) refuse pods that the real
// controllers (Deployment's ReplicaSet, StatefulSet, DaemonSet, Job) try
// to create, and the wait names the cause from their FailedCreate events.
func TestRefusedPodsNamePolicy(t *testing.T) {
	kube := env.Clientset(t)
	cases := []struct {
		name    string
		policy  func(t *testing.T, ns string)
		kind    string
		podSpec string // the pod template's spec, as YAML flow
		cause   Cause
		// message is the pattern of the object's message. Its summary of
		// the workload's status ([^;]+) depends on how far the controller
		// got when the cause was first named.
		message string
	}{
		{
			name: "pod security on a statefulset",
			policy: func(t *testing.T, ns string) {
				labelNamespace(t, kube, ns, "pod-security.kubernetes.io/enforce", "restricted")
			},
			kind: "StatefulSet", podSpec: `{containers: [{name: db, image: registry.example/db:1.0}]}`,
			cause: Forbidden,
			message: `^StatefulSet ` + nsRE + `/app: [^;]+; statefulset app: cannot create pods, refused by PodSecurity "restricted:latest": ` +
				`allowPrivilegeEscalation != false \(container "db" must set securityContext\.allowPrivilegeEscalation=false\), .*`,
		},
		{
			name:   "quota on a daemonset",
			policy: func(t *testing.T, ns string) { createQuota(t, kube, ns, 0) },
			kind:   "DaemonSet", podSpec: `{containers: [{name: agent, image: registry.example/agent:1.0}]}`,
			cause: QuotaExceeded,
			message: `^DaemonSet ` + nsRE + `/app: [^;]+; daemonset app: cannot create pods, refused by ResourceQuota "pods": ` +
				`exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0$`,
		},
		{
			name: "limit range on a deployment",
			policy: func(t *testing.T, ns string) {
				createObject(t, ns, `{apiVersion: v1, kind: LimitRange, metadata: {name: small}, spec: {limits: [{type: Container, max: {cpu: "1"}}]}}`)
			},
			kind:  "Deployment",
			cause: Forbidden, podSpec: `{containers: [{name: api, image: registry.example/api:1.0, resources: {limits: {cpu: "2"}}}]}`,
			// Named on the ReplicaSet, or on the Deployment (its copy of the
			// ReplicaFailure condition) before the ReplicaSet is in the cache.
			message: `^Deployment ` + nsRE + `/app: [^;]+; (replicaset app-` + hashRE + `|deployment app): cannot create pods, refused by LimitRange: ` +
				`maximum cpu usage per Container is 1, but limit is 2$`,
		},
		{
			name:   "validating admission policy on a job",
			policy: denyBlockedPods,
			kind:   "Job", podSpec: `{restartPolicy: Never, containers: [{name: report, image: registry.example/report:1.0}]}`,
			cause: Forbidden,
			message: `^Job ` + nsRE + `/app: [^;]+; job app: cannot create pods, refused by ValidatingAdmissionPolicy "deny-blocked-` + nsRE + `": ` +
				`blocked pods are not allowed$`,
		},
		{
			name: "missing service account on a job",
			kind: "Job", podSpec: `{restartPolicy: Never, serviceAccountName: runner, containers: [{name: report, image: registry.example/report:1.0}]}`,
			cause: ConfigError,
			message: `^Job ` + nsRE + `/app: [^;]+; job app: cannot create pods, refused by missing ServiceAccount ` + nsRE + `/runner: ` +
				`error looking up service account ` + nsRE + `/runner: serviceaccount "runner" not found$`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := namespace(t, kube)
			if tc.policy != nil {
				tc.policy(t, ns)
			}
			createObject(t, ns, workloadManifest(tc.kind, tc.podSpec))
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			var named ObjectHealth
			rep := newChecker(t).Wait(ctx, []ObjectRef{ref(tc.kind, ns, "app")}, WaitOptions{Timeout: 5 * time.Minute, OnProgress: func(r Report) {
				if r.Objects[0].Cause == tc.cause {
					named = r.Objects[0]
					cancel()
				}
			}})
			if named.Cause != tc.cause {
				t.Fatalf("cause never %q: %s", tc.cause, describe(rep))
			}
			if !regexp.MustCompile(tc.message).MatchString(named.Message) {
				t.Errorf("message = %q\nwant match for %s", named.Message, tc.message)
			}
		})
	}
}

// workloadManifest is a one-replica workload of kind named app, with the
// pod spec given, as a YAML flow mapping.
func workloadManifest(kind, podSpec string) string {
	template := fmt.Sprintf(`{metadata: {labels: {app: app, blocked: "yes"}}, spec: %s}`, podSpec)
	switch kind {
	case "Job":
		return fmt.Sprintf(`{apiVersion: batch/v1, kind: Job, metadata: {name: app}, spec: {backoffLimit: 0, template: %s}}`, template)
	case "StatefulSet":
		return fmt.Sprintf(`{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: app}, spec: {serviceName: app, replicas: 1, selector: {matchLabels: {app: app}}, template: %s}}`, template)
	case "DaemonSet":
		return fmt.Sprintf(`{apiVersion: apps/v1, kind: DaemonSet, metadata: {name: app}, spec: {selector: {matchLabels: {app: app}}, template: %s}}`, template)
	}
	return fmt.Sprintf(`{apiVersion: apps/v1, kind: Deployment, metadata: {name: app}, spec: {replicas: 1, selector: {matchLabels: {app: app}}, template: %s}}`, template)
}

// createObject creates the object in manifest (in ns when namespaced).
func createObject(t *testing.T, ns, manifest string) {
	t.Helper()
	obj, err := decodeYAML([]byte(manifest))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	gvk := obj.GroupVersionKind()
	resources := map[string]string{"LimitRange": "limitranges", "Job": "jobs", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets",
		"Deployment": "deployments", "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
		"ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"}
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resources[gvk.Kind]}
	ri := env.Dynamic(t).Resource(gvr)
	if ns == "" {
		if _, err := ri.Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
		t.Cleanup(func() { _ = ri.Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{}) })
		return
	}
	if _, err := ri.Namespace(ns).Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s %s/%s: %v", gvk.Kind, ns, obj.GetName(), err)
	}
}

func labelNamespace(t *testing.T, kube kubernetes.Interface, ns, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if _, err := kube.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// denyBlockedPods makes a ValidatingAdmissionPolicy, bound to ns only,
// that refuses pods labelled blocked, and waits until the apiserver
// enforces it (it loads policies asynchronously): a dry-run pod must be
// refused.
func denyBlockedPods(t *testing.T, ns string) {
	t.Helper()
	name := "deny-blocked-" + ns
	createObject(t, "", fmt.Sprintf(`{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingAdmissionPolicy, metadata: {name: %s},
spec: {failurePolicy: Fail, matchConstraints: {resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]},
  validations: [{expression: "!has(object.metadata.labels) || !('blocked' in object.metadata.labels)", message: blocked pods are not allowed}]}}`, name))
	createObject(t, "", fmt.Sprintf(`{apiVersion: admissionregistration.k8s.io/v1, kind: ValidatingAdmissionPolicyBinding, metadata: {name: %[1]s},
spec: {policyName: %[1]s, validationActions: [Deny], matchResources: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %[2]s}}}}}`, name, ns))
	kube := env.Clientset(t)
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Labels: map[string]string{"blocked": "yes"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "registry.example/probe:1.0"}}},
	}
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kube.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil, nil
	})
	if err != nil {
		t.Fatalf("policy %s never enforced: %v", name, err)
	}
}
