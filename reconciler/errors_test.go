package reconciler

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestAsImmutable(t *testing.T) {
	gk := schema.GroupKind{Group: "batch", Kind: "Job"}
	immutable := apierrors.NewInvalid(gk, "migrate", field.ErrorList{
		field.Invalid(field.NewPath("spec", "template"), "...", "field is immutable"),
		field.Invalid(field.NewPath("spec", "parallelism"), -1, "must be non-negative"),
	})
	imm := asImmutable(fmt.Errorf("wrapped: %w", immutable))
	require.NotNil(t, imm)
	assert.Equal(t, []string{"spec.template"}, imm.Fields)
	assert.Contains(t, imm.Error(), "immutable field spec.template cannot be changed in place")
	assert.Contains(t, imm.Error(), AnnotationRecreate)
	assert.True(t, errors.Is(imm, immutable))

	service := apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), []string{"10.96.0.10"}, "may not change once set"),
	})
	require.NotNil(t, asImmutable(service))
	assert.Equal(t, []string{"spec.clusterIPs[0]"}, asImmutable(service).Fields)

	plain := apierrors.NewInvalid(gk, "migrate", field.ErrorList{field.Required(field.NewPath("spec", "template"), "")})
	assert.Nil(t, asImmutable(plain))
	assert.Nil(t, asImmutable(errors.New("boom")))
	assert.Nil(t, asImmutable(nil))
}

func TestPermissionError(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	denied := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New(`User "system:serviceaccount:shop:baton" cannot patch resource`))
	err := permissionError(nil, "patch", gvr, "shop", denied)
	assert.Contains(t, err.Error(), `permission denied: cannot patch deployments.apps in namespace "shop"`)
	assert.True(t, apierrors.IsForbidden(err), "the API error stays reachable")

	crb := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	assert.Contains(t, permissionError(nil, "get", crb, "", apierrors.NewForbidden(crb.GroupResource(), "x", errors.New("no"))).Error(),
		"cannot get clusterroles.rbac.authorization.k8s.io cluster-wide")

	other := errors.New("connection refused")
	assert.Same(t, other, permissionError(nil, "patch", gvr, "shop", other))

	sa := &ServiceAccount{Namespace: "shop", Name: "deployer"}
	assert.Contains(t, permissionError(sa, "patch", gvr, "shop", denied).Error(),
		`permission denied: ServiceAccount shop/deployer cannot patch deployments.apps in namespace "shop"`)
	noImpersonation := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts"}, "deployer",
		errors.New(`User "system:serviceaccount:baton-system:baton" cannot impersonate resource "serviceaccounts"`))
	assert.Contains(t, permissionError(sa, "patch", gvr, "shop", noImpersonation).Error(),
		"permission denied: the agent may not impersonate ServiceAccount shop/deployer")
}

func TestObjectErrorFormat(t *testing.T) {
	ref := ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "web"}
	cause := errors.New("boom")
	err := objectError("apply", ref, cause)
	assert.EqualError(t, err, "apply Deployment/shop/web: boom")
	var oe *ObjectError
	require.True(t, errors.As(fmt.Errorf("pass: %w", err), &oe))
	assert.Equal(t, ref, oe.Ref)
	assert.ErrorIs(t, err, cause)
}

func TestPassErrorShowsTheFirstFew(t *testing.T) {
	var errs []error
	for i := range 8 {
		errs = append(errs, fmt.Errorf("e%d", i))
	}
	err := joinErrors(errs)
	assert.EqualError(t, err, "8 object(s) failed: e0; e1; e2; e3; e4; and 3 more")
	assert.ErrorIs(t, err, errs[7], "all errors stay reachable")
	assert.Nil(t, joinErrors(nil))
	assert.Same(t, errs[0], joinErrors(errs[:1]))
}
