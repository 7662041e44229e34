package reconciler

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// pollInterval is how often a wait re-reads the object. Waits are short
// (a CRD is Established in well under a second), so a tight interval keeps
// a pass fast without loading the API server.
const pollInterval = 50 * time.Millisecond

// waitFor polls cond until it holds, fails, or timeout passes; the error
// says what was awaited.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond wait.ConditionWithContextFunc) error {
	err := wait.PollUntilContextTimeout(ctx, pollInterval, timeout, true, cond)
	if err != nil {
		return fmt.Errorf("wait for %s: %w", what, err)
	}
	return nil
}

var gvrCRD = schema.GroupVersionResource{Group: groupAPIExtensions, Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until a CRD serves its kind.
func (p *pass) waitEstablished(ctx context.Context, name string) error {
	return waitFor(ctx, p.r.opts.WaitTimeout, "Established", func(ctx context.Context) (bool, error) {
		crd, err := p.client().get(ctx, gvrCRD, "", name)
		if err != nil || crd == nil {
			return false, err
		}
		return hasCondition(crd, "Established", "True"), nil
	})
}

// waitActive waits until a Namespace is Active. A Namespace being deleted
// is an error at once: objects cannot be created in it.
func (p *pass) waitActive(ctx context.Context, ns *unstructured.Unstructured) error {
	check := func(obj *unstructured.Unstructured) (bool, error) {
		phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
		switch {
		case phase == "Terminating" || obj.GetDeletionTimestamp() != nil:
			return false, fmt.Errorf("namespace is terminating")
		case phase == "Active":
			return true, nil
		}
		return false, nil
	}
	if done, err := check(ns); done || err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	return waitFor(ctx, p.r.opts.WaitTimeout, "Active", func(ctx context.Context) (bool, error) {
		obj, err := p.client().get(ctx, gvr, "", ns.GetName())
		if err != nil || obj == nil {
			return false, err
		}
		return check(obj)
	})
}

// waitGone waits until the object with uid no longer exists (deleted, or
// replaced by a new object of the same name).
func (p *pass) waitGone(ctx context.Context, it *item, uid types.UID) error {
	return waitFor(ctx, p.r.opts.WaitTimeout, "deletion", func(ctx context.Context) (bool, error) {
		obj, err := p.client().get(ctx, it.gvr, it.ref.Namespace, it.ref.Name)
		if err != nil {
			return false, err
		}
		return obj == nil || obj.GetUID() != uid, nil
	})
}

// hasCondition reports whether status.conditions has type t with status s.
func hasCondition(obj *unstructured.Unstructured, t, s string) bool {
	raw, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "conditions")
	conds, _ := raw.([]any)
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == t && m["status"] == s {
			return true
		}
	}
	return false
}
