package health

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ObjectRef names one applied object. Version may be empty: the server's
// preferred version is used. Namespace is ignored for cluster-scoped kinds.
type ObjectRef struct {
	Group     string
	Version   string
	Kind      string
	Namespace string
	Name      string
}

// RefOf returns the reference to obj.
func RefOf(obj *unstructured.Unstructured) ObjectRef {
	gvk := obj.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// String formats the reference as "Kind/namespace/name", or "Kind/name"
// when cluster-scoped, for errors and logs.
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + "/" + r.Name
	}
	return r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Overall is the health of a set of objects taken together.
type Overall string

const (
	// Healthy: every object is Current and no recent failure (an OOM kill)
	// is known.
	Healthy Overall = "Healthy"
	// Progressing: some object is not yet Current, and nothing says it
	// cannot get there.
	Progressing Overall = "Progressing"
	// Degraded: some object has failed or certainly will (an image that
	// cannot be pulled, a container killed past the restart threshold, a
	// passed progress deadline), a ready workload had a container
	// OOM-killed recently, or a wait reached its timeout.
	Degraded Overall = "Degraded"
	// Cancelled: the wait's context ended (a newer revision) before a
	// verdict.
	Cancelled Overall = "Cancelled"
	// OverallUnknown: the objects could not be evaluated at all; Report.Err
	// says why (a bad reference, a kind the cluster does not serve).
	OverallUnknown Overall = "Unknown"
)

// ObjectHealth is the health of one object in a Report.
type ObjectHealth struct {
	Ref ObjectRef
	// Status is the object's status as Compute sees it, except that an
	// object the cause finder is certain about (an image that cannot be
	// pulled, a container killed past the restart threshold) is Failed
	// although Compute still says InProgress.
	Status Status
	// Message names the object and, when one was found, the pod and
	// container at fault.
	Message string
	// Cause is the cause found, or NoCause.
	Cause Cause
	// ReadyAt is when the checker first saw the object Current, by its
	// clock, in this wait or monitor; zero while it is not Current. A
	// monitor resets it when the object stops being Current, so it reads
	// "ready since".
	ReadyAt time.Time
}

// Report is the health of a set of objects at one moment: the verdict of a
// wait, or one state of a monitor.
type Report struct {
	Overall Overall
	// Objects holds one entry per reference, in the order given.
	Objects []ObjectHealth
	// Cause is the most important cause among the objects (see Cause for
	// the order), TimedOut for a wait that timed out with none found, or
	// NoCause.
	Cause Cause
	// Message summarises the report in one line for events and the CLI.
	Message string
	// Started is when the wait or monitor started.
	Started time.Time
	// Since is when Overall took its present value: for a monitor, "healthy
	// since".
	Since time.Time
	// Finished is when a wait ended; zero in a monitor's reports.
	Finished time.Time
	// Err is set when the objects could not be evaluated (Overall is then
	// OverallUnknown).
	Err error
}

// failing reports whether o counts against a Healthy verdict for good: it
// failed, or it is Current with a cause (only a recent OOM kill gives a
// Current object a cause).
func (o ObjectHealth) failing() bool {
	return o.Status == Failed || (o.Status == Current && o.Cause != NoCause)
}

// summarize computes the overall verdict, cause and message of objects.
func summarize(objects []ObjectHealth) (Overall, Cause, string) {
	var worst *ObjectHealth // the failing object to name
	var first *ObjectHealth // the first object not ready, if none fails
	ready := 0
	for i := range objects {
		o := &objects[i]
		if o.failing() {
			if worst == nil || o.Cause.rank() < worst.Cause.rank() {
				worst = o
			}
			continue
		}
		if o.Status == Current {
			ready++
			continue
		}
		if first == nil || o.Cause.rank() < first.Cause.rank() {
			first = o
		}
	}
	switch {
	case worst != nil:
		return Degraded, worst.Cause, worst.Message
	case first != nil:
		return Progressing, first.Cause, fmt.Sprintf("%d/%d objects ready; %s", ready, len(objects), first.Message)
	}
	return Healthy, NoCause, fmt.Sprintf("%d/%d objects ready", ready, len(objects))
}

// sameState reports whether two reports say the same thing, ignoring
// timestamps: a monitor reports only changes.
func sameState(a, b Report) bool {
	if a.Overall != b.Overall || a.Cause != b.Cause || a.Message != b.Message || len(a.Objects) != len(b.Objects) {
		return false
	}
	for i := range a.Objects {
		x, y := a.Objects[i], b.Objects[i]
		if x.Status != y.Status || x.Cause != y.Cause || x.Message != y.Message {
			return false
		}
	}
	return true
}
