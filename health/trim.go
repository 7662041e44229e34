package health

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The caches keep only what Compute, the Finder and Diagnose read: the
// transforms below run on every object as it arrives from a watch, before
// it is stored, so a pod's volumes' contents, a Deployment's pod template
// or a ConfigMap's data never stay in memory. A field a status function or
// a diagnosis starts to read must be kept here too; the tests of those
// functions run on untrimmed objects, and TestTrimKeepsWhatIsRead on
// trimmed ones.

// metadataOnlyKinds have no status: their health is Current unless they are
// being deleted, which metadata tells. They are watched through the
// metadata API, so their data or rules are never sent.
var metadataOnlyKinds = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}:      true,
	{Kind: "Secret"}:         true,
	{Kind: "ServiceAccount"}: true,
	{Kind: "LimitRange"}:     true,
	{Kind: "PodTemplate"}:    true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:                              true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:                       true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                       true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                             true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                 true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                              true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                    true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}: true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:   true,
}

// lastApplied is kubectl's copy of the whole object, often its largest part.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// trimObject is the transform of the followed objects' caches: it drops
// managedFields, kubectl's last-applied copy, the pod templates of
// workloads (status functions read counters and conditions, never the
// template), the data of ConfigMaps and Secrets, and CRD schemas.
func trimObject(obj any) (any, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		trimUnstructured(o)
	case *metav1.PartialObjectMetadata:
		o.ManagedFields, o.Annotations = nil, nil
	}
	return obj, nil
}

func trimUnstructured(u *unstructured.Unstructured) {
	u.SetManagedFields(nil)
	if a := u.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		u.SetAnnotations(a)
	}
	for k := range u.Object {
		switch k {
		case "apiVersion", "kind", "metadata", "spec", "status":
		default: // data, binaryData, stringData, rules, webhooks...
			delete(u.Object, k)
		}
	}
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return
	}
	if u.GetKind() == "Pod" {
		return // a followed Pod's spec is its evidence (container images)
	}
	delete(spec, "template")             // Deployment, StatefulSet, DaemonSet, ReplicaSet, Job
	delete(spec, "jobTemplate")          // CronJob
	delete(spec, "volumeClaimTemplates") // StatefulSet
	if versions, ok := spec["versions"].([]any); ok && u.GetKind() == "CustomResourceDefinition" {
		for _, v := range versions {
			if m, ok := v.(map[string]any); ok {
				delete(m, "schema")
			}
		}
	}
}

// trimPod is the pod cache's transform. Diagnose reads the status, the
// controller reference, and from the spec the containers' names, images,
// resources, environment references and probes, the node, its selector and
// the volumes (for mount and configuration failures).
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	trimMeta(&p.ObjectMeta)
	p.Annotations = nil
	s := p.Spec
	p.Spec = corev1.PodSpec{
		NodeName:       s.NodeName,
		NodeSelector:   s.NodeSelector,
		Volumes:        s.Volumes,
		ReadinessGates: s.ReadinessGates,
		InitContainers: trimContainers(s.InitContainers),
		Containers:     trimContainers(s.Containers),
	}
	return p, nil
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{
			Name: c.Name, Image: c.Image, Resources: c.Resources,
			Env: c.Env, EnvFrom: c.EnvFrom,
			ReadinessProbe: c.ReadinessProbe, LivenessProbe: c.LivenessProbe, StartupProbe: c.StartupProbe,
		}
	}
	return out
}

// trimReplicaSet is the ReplicaSet cache's transform: the Finder reads the
// controller reference, the revision annotation, the selector, replicas and
// the status; never the pod template.
func trimReplicaSet(obj any) (any, error) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return obj, nil
	}
	trimMeta(&rs.ObjectMeta)
	rev, hasRev := rs.Annotations[revisionAnnotation]
	rs.Annotations = nil
	if hasRev {
		rs.Annotations = map[string]string{revisionAnnotation: rev}
	}
	rs.Spec.Template = corev1.PodTemplateSpec{}
	return rs, nil
}

// trimEvent is the event cache's transform: what an event is about, its
// reason, message, type, count and times.
func trimEvent(obj any) (any, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return obj, nil
	}
	trimMeta(&e.ObjectMeta)
	e.Annotations, e.Labels = nil, nil
	e.Source, e.Related = corev1.EventSource{}, nil
	e.ReportingController, e.ReportingInstance, e.Action = "", "", ""
	return e, nil
}

func trimMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.Finalizers = nil
}

// metadataObject gives a metadata-only object the shape Compute reads.
func metadataObject(m *metav1.PartialObjectMetadata, gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(gvk)
	u.SetName(m.Name)
	u.SetNamespace(m.Namespace)
	u.SetUID(m.UID)
	u.SetGeneration(m.Generation)
	u.SetDeletionTimestamp(m.DeletionTimestamp)
	return u
}
