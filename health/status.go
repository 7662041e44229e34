package health

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Status is the readiness of one object as Compute sees it.
type Status string

const (
	// Current means the object has reached the state its spec asks for.
	Current Status = "Current"
	// InProgress means the object is still moving toward its spec; it may
	// get there without anyone acting.
	InProgress Status = "InProgress"
	// Failed means the object will not reach its spec without a change
	// (a progress deadline passed, a Job failed, a claim was lost).
	Failed Status = "Failed"
	// Terminating means the object is being deleted.
	Terminating Status = "Terminating"
	// Unknown means the status could not be read: the object is missing,
	// malformed, or its kind cannot be resolved.
	Unknown Status = "Unknown"
)

// Result is the status of one object with a short message saying why.
type Result struct {
	Status  Status
	Message string
}

// StatusOptions tune Compute for one environment. The zero value is the
// default.
type StatusOptions struct {
	// SkipLoadBalancer treats a Service of type LoadBalancer as Current
	// without an address: for clusters with no load-balancer controller
	// (kind, bare metal without MetalLB), where the address never comes.
	// Default false: such a Service is InProgress until it has an address.
	SkipLoadBalancer bool
}

// kindFunc computes the status of one kind, after the generic checks passed.
type kindFunc func(obj *unstructured.Unstructured, opts StatusOptions) Result

// kindFuncs maps a group/kind to its status function. Kinds not listed fall
// back to their conditions (see fallback).
var kindFuncs = map[schema.GroupKind]kindFunc{
	{Group: "apps", Kind: "Deployment"}:                               deploymentStatus,
	{Group: "apps", Kind: "StatefulSet"}:                              statefulSetStatus,
	{Group: "apps", Kind: "DaemonSet"}:                                daemonSetStatus,
	{Group: "apps", Kind: "ReplicaSet"}:                               replicaSetStatus,
	{Group: "", Kind: "Pod"}:                                          podStatus,
	{Group: "batch", Kind: "Job"}:                                     jobStatus,
	{Group: "batch", Kind: "CronJob"}:                                 cronJobStatus,
	{Group: "", Kind: "PersistentVolumeClaim"}:                        pvcStatus,
	{Group: "", Kind: "Service"}:                                      serviceStatus,
	{Group: "", Kind: "Namespace"}:                                    namespaceStatus,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}: crdStatus,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:             apiServiceStatus,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                    pdbStatus,
	{Group: "autoscaling", Kind: "HorizontalPodAutoscaler"}:           hpaStatus,
}

// Compute returns the status of obj with the default options. It reads only
// the object: no cluster access, no clock.
func Compute(obj *unstructured.Unstructured) Result {
	return ComputeWith(obj, StatusOptions{})
}

// ComputeWith returns the status of obj. The generic checks run first
// (deletion, then the controller having observed the latest generation),
// then the kind's own function, then, for kinds without one, the standard
// conditions. An object without a status is Current: most kinds (ConfigMap,
// Role, ...) have nothing to wait for.
func ComputeWith(obj *unstructured.Unstructured, opts StatusOptions) Result {
	if obj == nil {
		return Result{Status: Unknown, Message: "no object"}
	}
	if obj.GetDeletionTimestamp() != nil {
		return Result{Status: Terminating, Message: "being deleted"}
	}
	if r, stale := generationCheck(obj); stale {
		return r
	}
	gk := obj.GroupVersionKind().GroupKind()
	if fn, ok := kindFuncs[gk]; ok {
		return fn(obj, opts)
	}
	return fallback(obj)
}
