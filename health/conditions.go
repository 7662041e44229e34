package health

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/baton-gitops/baton/internal/statuscond"
)

func str(v any) string {
	s, _ := v.(string)
	return s
}

// intField reads an integer field. JSON decoding yields int64 from the
// apiserver but float64 from some YAML paths, so both are accepted.
func intField(obj *unstructured.Unstructured, fields ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj.Object, fields...)
	if !found || err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

// intOr reads an integer field, returning def when it is absent. Status
// counters are omitted when zero, so absent usually means 0.
func intOr(obj *unstructured.Unstructured, def int64, fields ...string) int64 {
	if n, ok := intField(obj, fields...); ok {
		return n
	}
	return def
}

func stringField(obj *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(obj.Object, fields...)
	return s
}

func boolField(obj *unstructured.Unstructured, fields ...string) bool {
	b, _, _ := unstructured.NestedBool(obj.Object, fields...)
	return b
}

// hasStatus reports whether status exists and is not empty.
func hasStatus(obj *unstructured.Unstructured) bool {
	m, found, _ := unstructured.NestedMap(obj.Object, "status")
	return found && len(m) > 0
}

// generationCheck reports an object whose controller has not yet seen its
// latest spec. Only a present status.observedGeneration is compared: many
// kinds never set it, and its absence says nothing for them (kinds that must
// have it check that in their own function).
func generationCheck(obj *unstructured.Unstructured) (Result, bool) {
	observed, ok := intField(obj, "status", "observedGeneration")
	if !ok {
		return Result{}, false
	}
	if gen := obj.GetGeneration(); gen > observed {
		return Result{
			Status:  InProgress,
			Message: fmt.Sprintf("generation %d not yet observed by its controller (observed %d)", gen, observed),
		}, true
	}
	return Result{}, false
}

// awaitObserved is the check for kinds whose controller always writes
// observedGeneration: until it does, the controller has not looked at the
// object at all.
func awaitObserved(obj *unstructured.Unstructured) (Result, bool) {
	if _, ok := intField(obj, "status", "observedGeneration"); ok {
		return Result{}, false
	}
	return Result{Status: InProgress, Message: "not yet observed by its controller"}, true
}

// fallback computes the status of a kind Compute has no function for, from
// the conditions most controllers use. The order matters: Stalled and
// Succeeded=False say the object gave up, which no Ready condition can
// override.
func fallback(obj *unstructured.Unstructured) Result {
	if len(statuscond.All(obj)) == 0 {
		// No status, or a status without conditions: nothing to wait for.
		return Result{Status: Current}
	}
	// A type listed twice counts by its first entry (statuscond's rule).
	byType := func(t string) (statuscond.Condition, bool) { return statuscond.Find(obj, t) }
	// Stalled/Reconciling are the "abnormal-true" pair many controllers
	// (Flux, cli-utils based ones) use: True is the abnormal state.
	if c, ok := byType("Stalled"); ok && c.Status == "True" {
		return Result{Status: Failed, Message: c.String()}
	}
	if c, ok := byType("Succeeded"); ok {
		switch c.Status {
		case "True":
			return Result{Status: Current, Message: c.String()}
		case "False":
			// Knative and Tekton mark a terminal failure this way.
			return Result{Status: Failed, Message: c.String()}
		default:
			return Result{Status: InProgress, Message: c.String()}
		}
	}
	if c, ok := byType("Reconciling"); ok && c.Status == "True" {
		return Result{Status: InProgress, Message: c.String()}
	}
	for _, t := range []string{"Ready", "Available"} {
		if c, ok := byType(t); ok {
			if c.Status == "True" {
				return Result{Status: Current, Message: c.String()}
			}
			return Result{Status: InProgress, Message: c.String()}
		}
	}
	return Result{Status: Current}
}

// plural picks "pod" or "pods" for counts in messages.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	kept := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
