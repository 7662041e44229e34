package reconciler

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestScopeRules runs the scope and the agent's own objects over a planned
// set: each case is one object and the rule it breaks ("" when allowed).
func TestScopeRules(t *testing.T) {
	namespaceKind := schema.GroupKind{Kind: "Namespace"}
	clusterRole := schema.GroupKind{Group: groupRBAC, Kind: "ClusterRole"}
	narrow := &Scope{Namespaces: []string{"shop-dev", "team-*"}}
	withKinds := &Scope{Namespaces: []string{"shop-dev"}, ClusterKinds: []schema.GroupKind{namespaceKind, clusterRole}}
	wide := &Scope{ClusterWide: true}
	for _, tc := range []struct {
		name  string
		scope *Scope
		doc   string
		rule  string
		words string
	}{
		{"default namespace", narrow, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "", ""},
		{"pattern", narrow, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team-blue}\n", "", ""},
		{"other namespace", narrow, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\n",
			RuleNamespace, `namespace "kube-system" is not in the environment's scope (scope.namespaces [shop-dev, team-*])`},
		{"cluster-scoped", narrow, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n",
			RuleClusterKind, "cluster-scoped kind ClusterRole.rbac.authorization.k8s.io is not in the environment's scope (scope.clusterKinds is empty)"},
		{"cluster kind allowed", withKinds, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n", "", ""},
		{"own Namespace", withKinds, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop-dev}\n", "", ""},
		{"another Namespace", withKinds, "apiVersion: v1\nkind: Namespace\nmetadata: {name: kube-system}\n",
			RuleClusterKind, `Namespace "kube-system" is not in the environment's scope`},
		{"no scope", nil, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: kube-system}\n", "", ""},
		{"cluster-wide", wide, "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: hook}\n", "", ""},
		{"agent namespace, cluster-wide", wide, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: baton-config, namespace: baton-system}\n",
			RuleProtected, `namespace "baton-system" is the agent's own`},
		{"agent namespace, no scope", nil, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: baton-inventory-prod, namespace: baton-system}\n",
			RuleProtected, `namespace "baton-system" is the agent's own`},
		{"agent Namespace object", wide, "apiVersion: v1\nkind: Namespace\nmetadata: {name: baton-system}\n",
			RuleProtected, `Namespace "baton-system" is the agent's own`},
		{"agent ClusterRole", wide, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: baton-agent}\n",
			RuleProtected, `ClusterRole "baton-agent" is named for baton`},
		{"agent ClusterRoleBinding", wide, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: baton}\n",
			RuleProtected, `ClusterRoleBinding "baton" is named for baton`},
		{"a name that only starts alike", wide, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: batonista}\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := Request{Environment: "dev", DefaultNamespace: "shop-dev", Scope: tc.scope,
				Objects:  []*unstructured.Unstructured{obj(t, tc.doc)},
				SourceOf: func(o *unstructured.Unstructured) string { return "overlays/dev/" + o.GetName() + ".yaml:1" }}
			require.NoError(t, validateRequest(req))
			items, err := plan(context.Background(), staticMapper(), req)
			require.NoError(t, err)
			err = checkScope(items, req.Objects, req, "baton-system")
			if tc.rule == "" {
				require.NoError(t, err)
				return
			}
			var refused *RefusedError
			require.True(t, errors.As(err, &refused), "%v", err)
			require.Len(t, refused.Violations, 1)
			v := refused.Violations[0]
			assert.Equal(t, tc.rule, v.Rule)
			assert.Equal(t, []string{tc.rule}, refused.Rules())
			assert.Contains(t, v.Reason, tc.words)
			assert.Contains(t, err.Error(), v.Ref.String()+" (from overlays/dev/"+v.Ref.Name+".yaml:1): ")
		})
	}
}

func TestRefusedErrorListsEveryViolationAndShowsTheFirstFew(t *testing.T) {
	var objs []*unstructured.Unstructured
	for i := range 7 {
		objs = append(objs, obj(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c%d, namespace: other}\n", i)))
	}
	objs = append(objs, obj(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n"))
	req := Request{Environment: "dev", DefaultNamespace: "shop", Scope: &Scope{Namespaces: []string{"shop"}}, Objects: objs}
	items, err := plan(context.Background(), staticMapper(), req)
	require.NoError(t, err)
	err = checkScope(items, objs, req, "baton-system")
	var refused *RefusedError
	require.ErrorAs(t, err, &refused)
	assert.Len(t, refused.Violations, 7)
	assert.Contains(t, err.Error(), "refused: 7 object(s) outside what the environment may write: ConfigMap/other/c0: ")
	assert.Contains(t, err.Error(), "; and 2 more")
}

func TestValidateRequestScopeAndAccount(t *testing.T) {
	base := Request{Environment: "dev"}
	bad := base
	bad.Scope = &Scope{Namespaces: []string{"["}}
	assert.ErrorContains(t, validateRequest(bad), `scope namespace pattern "[" is not a valid pattern`)
	bad = base
	bad.ServiceAccount = &ServiceAccount{Namespace: "Shop", Name: "deployer"}
	assert.ErrorContains(t, validateRequest(bad), `service account namespace "Shop"`)
	good := base
	good.ServiceAccount = &ServiceAccount{Namespace: "shop", Name: "deployer"}
	assert.NoError(t, validateRequest(good))
	assert.Equal(t, "system:serviceaccount:shop:deployer", good.ServiceAccount.UserName())
}
