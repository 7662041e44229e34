package reconciler

import (
	"cmp"
	"slices"
)

// stage is a step of the staged apply. Stages run one after another; the
// objects of one stage are applied in parallel.
type stage int

const (
	// stageCRDs: CustomResourceDefinitions, waited on until Established so
	// that custom resources of the same revision can be mapped and applied.
	stageCRDs stage = iota
	// stageNamespaces: Namespaces, waited on until Active.
	stageNamespaces
	// stageCluster: other cluster-scoped objects (ClusterRoles, ...).
	stageCluster
	// stageNamespaced: namespaced objects.
	stageNamespaced
	// stageAdmission: admission webhooks and policies come last, so that a
	// webhook whose backend is part of this revision cannot refuse the very
	// objects that make up that backend.
	stageAdmission
	numStages
)

func (s stage) String() string {
	return [...]string{"crds", "namespaces", "cluster", "namespaced", "admission"}[s]
}

const (
	groupAPIExtensions = "apiextensions.k8s.io"
	groupAdmission     = "admissionregistration.k8s.io"
	kindCRD            = "CustomResourceDefinition"
	kindNamespace      = "Namespace"
)

// stageOf places an object by group, kind and scope.
func stageOf(group, kind string, namespaced bool) stage {
	switch {
	case group == groupAPIExtensions && kind == kindCRD:
		return stageCRDs
	case group == "" && kind == kindNamespace:
		return stageNamespaces
	case group == groupAdmission:
		return stageAdmission
	case namespaced:
		return stageNamespaced
	default:
		return stageCluster
	}
}

// kindRank orders kinds inside a stage so that reports read in a natural
// order (accounts and configuration before the workloads that use them).
// Objects of one stage are applied in parallel, so this is about reading
// order, not about dependencies. Unknown kinds come after known ones.
var kindRank = func() map[string]int {
	order := []string{
		// cluster-scoped
		"PriorityClass", "StorageClass", "IngressClass", "RuntimeClass",
		"ClusterRole", "ClusterRoleBinding", "PersistentVolume",
		// namespaced
		"ResourceQuota", "LimitRange", "ServiceAccount", "Role", "RoleBinding",
		"Secret", "ConfigMap", "PersistentVolumeClaim", "NetworkPolicy", "Service",
		"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob",
		"HorizontalPodAutoscaler", "PodDisruptionBudget", "Ingress",
		// admission
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
		"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
		"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
	}
	m := make(map[string]int, len(order))
	for i, k := range order {
		m[k] = i
	}
	return m
}()

func rankOf(kind string) int {
	if r, ok := kindRank[kind]; ok {
		return r
	}
	return len(kindRank)
}

// compareRefs orders two objects of the same stage: known kinds by rank,
// then group, kind, namespace and name, so that the order never depends on
// the order of the input or on map iteration.
func compareRefs(a, b ObjectRef) int {
	return cmp.Or(
		cmp.Compare(rankOf(a.Kind), rankOf(b.Kind)),
		cmp.Compare(a.Group, b.Group),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
	)
}

// sortStaged sorts items by stage and then by compareRefs, and numbers them:
// item.index is its position in Result.Changes.
func sortStaged(items []*item) {
	slices.SortStableFunc(items, func(a, b *item) int {
		return cmp.Or(cmp.Compare(a.stage, b.stage), compareRefs(a.ref, b.ref))
	})
	for i, it := range items {
		it.index = i
	}
}

// byStage splits sorted items into one slice per stage.
func byStage(items []*item) [numStages][]*item {
	var out [numStages][]*item
	for _, it := range items {
		out[it.stage] = append(out[it.stage], it)
	}
	return out
}
