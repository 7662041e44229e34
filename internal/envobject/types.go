// Package envobject is the Environment custom resource (baton.dev/v1alpha1):
// one object per environment an agent syncs, in the agent's namespace, whose
// status the agent keeps and whose spec people use to suspend the
// environment or ask for a sync. It is where Kubernetes tools look: `kubectl
// get environments`, `kubectl wait --for=condition=Ready environment/prod`,
// k9s and Headlamp read it; Baton's Events are recorded on it.
//
// The CustomResourceDefinition is manifests/environment-crd.yaml, written
// by hand with a structural schema; the types here mirror it.
//
// Who writes what: the agent owns status (server-side apply, field manager
// "baton-agent") and creates the object with its labels only; people (`baton
// suspend|resume|sync`, field manager "baton-cli", or kubectl) own spec and
// the sync-request annotation. The agent never writes spec.
package envobject

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The resource's names.
const (
	Group    = "baton.dev"
	Version  = "v1alpha1"
	Kind     = "Environment"
	Resource = "environments"
)

// GVR is the resource the dynamic client uses.
var GVR = schema.GroupVersionResource{Group: Group, Version: Version, Resource: Resource}

// APIVersion is "baton.dev/v1alpha1".
const APIVersion = Group + "/" + Version

// Labels and annotations.
const (
	// LabelEnvironment is the environment's name, as on applied objects.
	LabelEnvironment = "baton.dev/environment"
	// AnnotationRequestedAt asks the agent to poll and sync now, Flux
	// style: any new value (`baton sync` writes the time) is one request,
	// acknowledged in status.lastHandledRequestedAt.
	AnnotationRequestedAt = "baton.dev/requestedAt"
	// AnnotationRequestedBy names who asked (the CLI's user).
	AnnotationRequestedBy = "baton.dev/requestedBy"
)

// Field managers of server-side apply.
const (
	FieldManagerAgent = "baton-agent"
	FieldManagerCLI   = "baton-cli"
)

// Condition types. Ready, Synced and Healthy are positive ("normal-true");
// Reconciling and Stalled are kstatus's abnormal-true pair, so that kstatus
// (and tools built on it) reads InProgress and Failed correctly.
const (
	ConditionReady       = "Ready"
	ConditionSynced      = "Synced"
	ConditionHealthy     = "Healthy"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Environment is one environment's object.
type Environment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              Spec   `json:"spec,omitempty"`
	Status            Status `json:"status,omitempty"`
}

// EnvironmentList is a list of Environments.
type EnvironmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Environment `json:"items"`
}

// Spec is what people ask of the environment at run time. The
// environment's definition (branch, overlay, cluster) stays in baton.yaml.
type Spec struct {
	// Suspend stops applying and promoting within seconds, without a
	// restart; the branch is still polled and reported. baton.yaml's
	// environments[].suspend also suspends, and wins.
	Suspend bool `json:"suspend,omitempty"`
	// SuspendedBy and SuspendReason say who suspended it and why. `baton
	// suspend` fills SuspendedBy from the API server's answer to a
	// SelfSubjectReview (the kubeconfig's identity).
	SuspendedBy   string `json:"suspendedBy,omitempty"`
	SuspendReason string `json:"suspendReason,omitempty"`
}

// Status is the agent's report, mirrored from its /api/status.
type Status struct {
	// ObservedGeneration is the generation of the spec the agent acts on.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Synced, Healthy, Reconciling, Stalled.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Agent is the identity of the replica that wrote this status: the
	// one that syncs the environment.
	Agent string `json:"agent,omitempty"`
	// Pipeline names the environment's pipeline (application or team),
	// when it is in one.
	Pipeline string `json:"pipeline,omitempty"`
	// Repository (without credentials), Branch and Path locate the overlay.
	Repository string `json:"repository,omitempty"`
	Branch     string `json:"branch,omitempty"`
	Path       string `json:"path,omitempty"`
	// Revision is the synced commit, short (for the printer column).
	Revision string `json:"revision,omitempty"`
	// Head is the branch's last good revision; Synced the revision whose
	// every object was last applied, since SyncedAt.
	Head     *Revision    `json:"head,omitempty"`
	Synced   *Revision    `json:"synced,omitempty"`
	SyncedAt *metav1.Time `json:"syncedAt,omitempty"`
	// SourceError is why the branch could not be read at the last poll.
	SourceError string `json:"sourceError,omitempty"`
	// LastSync is the last pass, successful or not.
	LastSync *Sync `json:"lastSync,omitempty"`
	// Health is the synced revision's health.
	Health Health `json:"health,omitempty"`
	// Soak is how long the environment must stay healthy before its
	// revision is promoted (a Go duration such as "2m0s").
	Soak string `json:"soak,omitempty"`
	// Drifted lists the objects found edited by hand at the last pass;
	// DriftCount counts them (for the printer column).
	Drifted    []string `json:"drifted,omitempty"`
	DriftCount int      `json:"driftCount,omitempty"`
	// Suspended is set while the environment is suspended.
	Suspended *Suspension `json:"suspended,omitempty"`
	// Promotions are the last attempt along each pipeline edge out of the
	// environment; Promotion sums them up in one line (printer column).
	Promotions []Promotion `json:"promotions,omitempty"`
	Promotion  string      `json:"promotion,omitempty"`
	// LastHandledRequestedAt is the last baton.dev/requestedAt value the
	// agent acted on.
	LastHandledRequestedAt string `json:"lastHandledRequestedAt,omitempty"`
}

// Revision names a commit.
type Revision struct {
	Commit  string      `json:"commit"`
	Subject string      `json:"subject,omitempty"`
	Time    metav1.Time `json:"time,omitempty"`
}

// Sync is one sync pass.
type Sync struct {
	Time     metav1.Time    `json:"time"`
	Revision string         `json:"revision,omitempty"`
	Result   string         `json:"result"`
	Error    string         `json:"error,omitempty"`
	Duration string         `json:"duration,omitempty"`
	Counts   map[string]int `json:"counts,omitempty"`
}

// Health is a health verdict.
type Health struct {
	// Status is Healthy, Progressing, Degraded, Cancelled or Unknown.
	Status   string       `json:"status,omitempty"`
	Cause    string       `json:"cause,omitempty"`
	Message  string       `json:"message,omitempty"`
	Since    *metav1.Time `json:"since,omitempty"`
	Revision string       `json:"revision,omitempty"`
}

// Suspension is who suspended the environment, why and since when.
type Suspension struct {
	By     string       `json:"by,omitempty"`
	Reason string       `json:"reason,omitempty"`
	Since  *metav1.Time `json:"since,omitempty"`
	// Source is "spec" (the object) or "config" (baton.yaml).
	Source string `json:"source,omitempty"`
}

// Promotion is the last promotion attempt along one edge.
type Promotion struct {
	To             string       `json:"to"`
	Policy         string       `json:"policy,omitempty"`
	Revision       string       `json:"revision,omitempty"`
	Outcome        string       `json:"outcome,omitempty"`
	Reason         string       `json:"reason,omitempty"`
	Detail         string       `json:"detail,omitempty"`
	Commit         string       `json:"commit,omitempty"`
	PullRequestURL string       `json:"pullRequestURL,omitempty"`
	Time           *metav1.Time `json:"time,omitempty"`
}
