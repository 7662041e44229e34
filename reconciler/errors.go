package reconciler

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ObjectError is an error about one object. Every per-object error of this
// package is one, so callers can find the object with errors.As.
type ObjectError struct {
	// Op is the operation that failed: "apply", "delete", "map", ...
	Op  string
	Ref ObjectRef
	Err error
}

// Error formats the error as "op Kind/ns/name: cause".
func (e *ObjectError) Error() string {
	return e.Op + " " + e.Ref.String() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *ObjectError) Unwrap() error { return e.Err }

// objectError is the one formatter for errors about an object.
func objectError(op string, ref ObjectRef, err error) error {
	return &ObjectError{Op: op, Ref: ref, Err: err}
}

// ImmutableFieldError reports an apply refused because it changes fields the
// API server will not change in place.
type ImmutableFieldError struct {
	// Fields are the offending field paths as the API server names them,
	// e.g. "spec.selector".
	Fields []string
	Err    error
}

// Error names the fields and the way out.
func (e *ImmutableFieldError) Error() string {
	return fmt.Sprintf("immutable field %s cannot be changed in place; annotate the object %s: \"true\" to delete and create it (%v)",
		strings.Join(e.Fields, ", "), AnnotationRecreate, e.Err)
}

// Unwrap returns the API server's error.
func (e *ImmutableFieldError) Unwrap() error { return e.Err }

// asImmutable recognises the API server's ways of saying a field is
// immutable; it returns nil for any other error. Validation says "field is
// immutable" for most kinds but "may not change once set" for a Service's
// clusterIPs and ipFamilies.
func asImmutable(err error) *ImmutableFieldError {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) {
		return nil
	}
	details := status.Status().Details
	if details == nil {
		return nil
	}
	var fields []string
	for _, c := range details.Causes {
		if isImmutableMessage(c.Message) {
			fields = append(fields, c.Field)
		}
	}
	if len(fields) == 0 {
		return nil
	}
	return &ImmutableFieldError{Fields: fields, Err: err}
}

func isImmutableMessage(msg string) bool {
	return strings.Contains(msg, "field is immutable") || strings.Contains(msg, "may not change once set")
}

// permissionError rewrites an RBAC denial so that it names what baton tried:
// the verb, the resource, the namespace and, when the request impersonated
// one, the account — what an operator needs to write the missing rule.
// Other errors pass through unchanged.
func permissionError(account *ServiceAccount, verb string, gvr schema.GroupVersionResource, namespace string, err error) error {
	if !apierrors.IsForbidden(err) {
		return err
	}
	where := "cluster-wide"
	if namespace != "" {
		where = fmt.Sprintf("in namespace %q", namespace)
	}
	if account == nil {
		return fmt.Errorf("permission denied: cannot %s %s %s: %w", verb, qualifiedResource(gvr), where, err)
	}
	if strings.Contains(err.Error(), "cannot impersonate") {
		// The agent itself was refused, before the account's rights counted.
		return fmt.Errorf("permission denied: the agent may not impersonate %s (grant it \"impersonate\" on that serviceaccount): %w", account, err)
	}
	return fmt.Errorf("permission denied: %s cannot %s %s %s: %w", account, verb, qualifiedResource(gvr), where, err)
}

// qualifiedResource formats a resource as RBAC rules spell it: "deployments.apps",
// or "configmaps" for the core group.
func qualifiedResource(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}
