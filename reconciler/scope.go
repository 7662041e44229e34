package reconciler

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Scope is what an environment may write. A revision with any object
// outside it is refused before anything is applied or pruned.
//
// Whatever the scope says, the agent's own objects stay off-limits: its
// namespace (Options.InventoryNamespace) and everything in it, and the
// cluster-wide RBAC objects named for baton (see protectedReason).
type Scope struct {
	// Namespaces are the namespaces the environment may write, as path.Match
	// patterns ("shop-dev", "team-a-*"). A Namespace object is in scope only
	// when its name matches one too (and Namespace is a ClusterKind).
	Namespaces []string
	// ClusterKinds are the cluster-scoped kinds the environment may write.
	// An empty Group is the core group ("Namespace").
	ClusterKinds []schema.GroupKind
	// ClusterWide lets the environment write every namespace and every
	// cluster-scoped kind. It is an explicit opt-in for platform
	// environments; the agent's own objects stay off-limits.
	ClusterWide bool
}

// Refusal rules: why an object was refused (Violation.Rule). They are few
// and fixed, so callers can count them in a metric label.
const (
	// RuleNamespace: a namespaced object outside Scope.Namespaces.
	RuleNamespace = "namespace"
	// RuleClusterKind: a cluster-scoped object whose kind is not in
	// Scope.ClusterKinds (or a Namespace whose name is not in scope).
	RuleClusterKind = "cluster-kind"
	// RuleProtected: one of the agent's own objects.
	RuleProtected = "protected"
	// RuleOwnership: an object that belongs to another environment.
	RuleOwnership = "ownership"
)

// Violation is one object a revision may not write.
type Violation struct {
	Ref ObjectRef
	// Source names the file the object came from ("overlays/dev/web.yaml:3"),
	// when Request.SourceOf could tell; empty otherwise.
	Source string
	// Rule is one of the Rule* constants.
	Rule string
	// Reason says what the rule forbids, naming the setting that would
	// allow it where one exists.
	Reason string
}

func (v Violation) String() string {
	s := v.Ref.String()
	if v.Source != "" {
		s += " (from " + v.Source + ")"
	}
	return s + ": " + v.Reason
}

// RefusedError is a revision refused as a whole, before anything was
// applied or pruned, because objects of it are outside what the
// environment may write. Callers find it with errors.As.
type RefusedError struct {
	Violations []Violation
}

// Error lists the refused objects, the first few in full.
func (e *RefusedError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "refused: %d object(s) outside what the environment may write: ", len(e.Violations))
	writeFirst(&sb, e.Violations, Violation.String)
	return sb.String()
}

// Rules returns the distinct rules broken, in order of first appearance.
func (e *RefusedError) Rules() []string {
	var out []string
	for _, v := range e.Violations {
		if !slices.Contains(out, v.Rule) {
			out = append(out, v.Rule)
		}
	}
	return out
}

// validateScope checks a scope's patterns.
func validateScope(s *Scope) error {
	if s == nil {
		return nil
	}
	for _, p := range s.Namespaces {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("scope namespace pattern %q is not a valid pattern", p)
		}
	}
	for _, gk := range s.ClusterKinds {
		if gk.Kind == "" {
			return errors.New("scope cluster kind with an empty kind")
		}
	}
	return nil
}

// inNamespaces reports whether ns matches one of the scope's patterns.
func (s *Scope) inNamespaces(ns string) bool {
	for _, p := range s.Namespaces {
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

// scopeReason says why the scope refuses the object, or "" when it allows
// it. A nil scope allows everything.
func (s *Scope) reason(ref ObjectRef, namespaced bool) (rule, reason string) {
	if s == nil || s.ClusterWide {
		return "", ""
	}
	if namespaced {
		if s.inNamespaces(ref.Namespace) {
			return "", ""
		}
		return RuleNamespace, fmt.Sprintf("namespace %q is not in the environment's scope (scope.namespaces %s)", ref.Namespace, listOrNone(s.Namespaces))
	}
	gk := schema.GroupKind{Group: ref.Group, Kind: ref.Kind}
	if !slices.Contains(s.ClusterKinds, gk) {
		return RuleClusterKind, fmt.Sprintf("cluster-scoped kind %s is not in the environment's scope (scope.clusterKinds %s)", kindName(gk), kindList(s.ClusterKinds))
	}
	if gk == (schema.GroupKind{Kind: kindNamespace}) && !s.inNamespaces(ref.Name) {
		return RuleClusterKind, fmt.Sprintf("Namespace %q is not in the environment's scope (scope.namespaces %s)", ref.Name, listOrNone(s.Namespaces))
	}
	return "", ""
}

// protectedReason says why an object is one of the agent's own, or "" when
// it is not. These are off-limits to every environment, whatever its
// scope: a commit must never rewrite the agent's configuration, another
// environment's inventory, the leader Lease, or the RBAC that fences the
// agent.
func protectedReason(ref ObjectRef, namespaced bool, agentNamespace string) string {
	switch {
	case namespaced && ref.Namespace == agentNamespace:
		return fmt.Sprintf("namespace %q is the agent's own (its configuration, inventories and Lease): no environment may write it", agentNamespace)
	case !namespaced && ref.Group == "" && ref.Kind == kindNamespace && ref.Name == agentNamespace:
		return fmt.Sprintf("Namespace %q is the agent's own: no environment may write it", agentNamespace)
	case !namespaced && ref.Group == groupRBAC && (ref.Kind == "ClusterRole" || ref.Kind == "ClusterRoleBinding") && isBatonName(ref.Name):
		return fmt.Sprintf("%s %q is named for baton: the agent's own RBAC (names \"baton\" and \"baton-*\" are reserved) is off-limits to every environment", ref.Kind, ref.Name)
	}
	return ""
}

const groupRBAC = "rbac.authorization.k8s.io"

func isBatonName(name string) bool {
	return name == "baton" || strings.HasPrefix(name, "baton-") || strings.HasPrefix(name, "baton:")
}

// checkScope refuses, as a whole, a planned set with objects outside the
// request's scope or among the agent's own. It runs before anything is
// applied, and before the inventory is read, so that a refused revision
// changes nothing.
func checkScope(items []*item, objs []*unstructured.Unstructured, req Request, agentNamespace string) error {
	var vs []Violation
	for _, it := range items {
		v := Violation{Ref: it.ref}
		if reason := protectedReason(it.ref, it.namespaced, agentNamespace); reason != "" {
			v.Rule, v.Reason = RuleProtected, reason
		} else if v.Rule, v.Reason = req.Scope.reason(it.ref, it.namespaced); v.Rule == "" {
			continue
		}
		if req.SourceOf != nil && it.source >= 0 && it.source < len(objs) {
			v.Source = req.SourceOf(objs[it.source])
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil
	}
	return &RefusedError{Violations: vs}
}

func kindName(gk schema.GroupKind) string {
	if gk.Group == "" {
		return gk.Kind
	}
	return gk.Kind + "." + gk.Group
}

func kindList(gks []schema.GroupKind) string {
	s := make([]string, len(gks))
	for i, gk := range gks {
		s[i] = kindName(gk)
	}
	return listOrNone(s)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "is empty"
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// outsideScope says why an inventory entry that left git must not be
// pruned by this environment: it is outside the scope (which was narrowed
// since it was applied) or one of the agent's own. Such an entry leaves the
// inventory: the environment no longer manages it.
func (p *pass) outsideScope(ref ObjectRef, namespaced bool) string {
	if reason := protectedReason(ref, namespaced, p.r.opts.InventoryNamespace); reason != "" {
		return reason
	}
	_, reason := p.req.Scope.reason(ref, namespaced)
	return reason
}

// CheckScope lists the objects of a rendered set that req's environment
// may not write, by the rules a pass applies before anything is applied:
// its Scope and the agent's own objects (agentNamespace). It is for checks
// ahead of a sync (`baton validate`); a pass also refuses objects owned by
// another environment, which needs the live cluster. namespaced tells
// whether a kind is namespaced, and whether it knows; objects of kinds it
// does not know are not checked.
func CheckScope(req Request, agentNamespace string, namespaced func(schema.GroupVersionKind) (namespaced, known bool)) []Violation {
	var vs []Violation
	for _, obj := range req.Objects {
		if obj == nil {
			continue
		}
		gvk := obj.GroupVersionKind()
		ns, known := namespaced(gvk)
		if !known {
			continue
		}
		ref := ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
		if ns && ref.Namespace == "" {
			ref.Namespace = req.DefaultNamespace
		}
		v := Violation{Ref: ref}
		if reason := protectedReason(ref, ns, agentNamespace); reason != "" {
			v.Rule, v.Reason = RuleProtected, reason
		} else if v.Rule, v.Reason = req.Scope.reason(ref, ns); v.Rule == "" {
			continue
		}
		if req.SourceOf != nil {
			v.Source = req.SourceOf(obj)
		}
		vs = append(vs, v)
	}
	return vs
}
