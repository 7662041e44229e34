package render

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// applyOrder ranks the kinds that others depend on first: namespaces and
// cluster policy, then definitions, identities and configuration, storage,
// networking, then workloads and what targets them. Kinds not listed (custom
// resources) come after, by kind name; admission webhooks come last so they
// cannot block the creation of the services that back them.
var applyOrder = []string{
	"Namespace",
	"ResourceQuota",
	"LimitRange",
	"PriorityClass",
	"StorageClass",
	"CustomResourceDefinition",
	"ServiceAccount",
	"ClusterRole",
	"ClusterRoleBinding",
	"Role",
	"RoleBinding",
	"Secret",
	"ConfigMap",
	"PersistentVolume",
	"PersistentVolumeClaim",
	"Service",
	"Endpoints",
	"EndpointSlice",
	"IngressClass",
	"NetworkPolicy",
	"Pod",
	"ReplicaSet",
	"DaemonSet",
	"Deployment",
	"StatefulSet",
	"Job",
	"CronJob",
	"HorizontalPodAutoscaler",
	"PodDisruptionBudget",
	"Ingress",
}

var lastKinds = []string{
	"APIService",
	"MutatingWebhookConfiguration",
	"ValidatingWebhookConfiguration",
}

var kindRank = func() map[string]int {
	m := make(map[string]int, len(applyOrder)+len(lastKinds))
	for i, k := range applyOrder {
		m[k] = i
	}
	for i, k := range lastKinds {
		m[k] = len(applyOrder) + 1 + i
	}
	return m
}()

// rank places unknown kinds between applyOrder and lastKinds.
func rank(kind string) int {
	if r, ok := kindRank[kind]; ok {
		return r
	}
	return len(applyOrder)
}

// sortObjects orders objects for apply: kind rank, then kind name (for
// unknown kinds), API group, namespace and name. The order depends only on
// the objects, not on the order Kustomize produced them in.
func sortObjects(objs []*unstructured.Unstructured) {
	slices.SortStableFunc(objs, compareObjects)
}

func compareObjects(a, b *unstructured.Unstructured) int {
	ka, kb := a.GetKind(), b.GetKind()
	if c := rank(ka) - rank(kb); c != 0 {
		return c
	}
	for _, c := range []int{
		strings.Compare(ka, kb),
		strings.Compare(a.GroupVersionKind().Group, b.GroupVersionKind().Group),
		strings.Compare(a.GetNamespace(), b.GetNamespace()),
		strings.Compare(a.GetName(), b.GetName()),
		strings.Compare(a.GetAPIVersion(), b.GetAPIVersion()),
	} {
		if c != 0 {
			return c
		}
	}
	return 0
}
