package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// objClient does the per-object requests. It speaks REST directly for apply
// because the dynamic client hides the status code, and the code is how a
// server-side apply tells "created" (201) from "updated" (200) in one round
// trip.
type objClient struct {
	rest         rest.Interface
	dyn          dynamic.Interface
	fieldManager string
	// account is the ServiceAccount every request impersonates; nil for
	// the agent's own identity. Denials name it.
	account *ServiceAccount
}

func newObjClient(cfg *rest.Config, httpClient *http.Client, fieldManager string) (*objClient, error) {
	dyn, err := dynamic.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	rc := dynamic.ConfigFor(cfg)
	rc.GroupVersion = nil
	rc.APIPath = "/"
	restClient, err := rest.UnversionedRESTClientForConfigAndClient(rc, httpClient)
	if err != nil {
		return nil, fmt.Errorf("rest client: %w", err)
	}
	return &objClient{rest: restClient, dyn: dyn, fieldManager: fieldManager}, nil
}

// resource returns the dynamic client for an object's resource and namespace.
func (c *objClient) resource(gvr schema.GroupVersionResource, namespace string) dynamic.ResourceInterface {
	if namespace == "" {
		return c.dyn.Resource(gvr)
	}
	return c.dyn.Resource(gvr).Namespace(namespace)
}

func objectPath(gvr schema.GroupVersionResource, namespace, name string) []string {
	var p []string
	if gvr.Group == "" {
		p = append(p, "api", gvr.Version)
	} else {
		p = append(p, "apis", gvr.Group, gvr.Version)
	}
	if namespace != "" {
		p = append(p, "namespaces", namespace)
	}
	return append(p, gvr.Resource, name)
}

// apply server-side applies payload with forced conflicts: git is the
// truth, so fields another manager set are taken over. created reports a
// 201 answer (the object did not exist).
func (c *objClient) apply(ctx context.Context, gvr schema.GroupVersionResource, payload *unstructured.Unstructured, dryRun bool) (out *unstructured.Unstructured, created bool, err error) {
	body, err := json.Marshal(payload.Object)
	if err != nil {
		return nil, false, err
	}
	req := c.rest.Patch(types.ApplyPatchType).
		AbsPath(objectPath(gvr, payload.GetNamespace(), payload.GetName())...).
		Param("fieldManager", c.fieldManager).
		Param("force", "true").
		Body(body)
	if dryRun {
		req = req.Param("dryRun", metav1.DryRunAll)
	}
	res := req.Do(ctx)
	// Error, unlike Raw, decodes the server's Status: the reason, and the
	// causes that name an immutable field.
	if err := res.Error(); err != nil {
		return nil, false, c.denied("patch", gvr, payload.GetNamespace(), err)
	}
	raw, _ := res.Raw()
	var code int
	res.StatusCode(&code)
	out = &unstructured.Unstructured{}
	if err := out.UnmarshalJSON(raw); err != nil {
		return nil, false, fmt.Errorf("decode apply response: %w", err)
	}
	return out, code == http.StatusCreated, nil
}

// get reads an object; a missing object is (nil, nil).
func (c *objClient) get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (*unstructured.Unstructured, error) {
	obj, err := c.resource(gvr, namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, c.denied("get", gvr, namespace, err)
	}
	return obj, nil
}

// delete removes an object in the background (dependents are collected by
// the garbage collector), but only the instance identified by uid, so that
// an object re-created by someone else meanwhile is left alone. A missing
// object is not an error.
func (c *objClient) delete(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, uid types.UID) error {
	bg := metav1.DeletePropagationBackground
	err := c.resource(gvr, namespace).Delete(ctx, name, metav1.DeleteOptions{
		PropagationPolicy: &bg,
		Preconditions:     &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return c.denied("delete", gvr, namespace, err)
}

// jsonPatch sends a JSON patch (used to rewrite managedFields).
func (c *objClient) jsonPatch(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, patch []byte) (*unstructured.Unstructured, error) {
	obj, err := c.resource(gvr, namespace).Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: c.fieldManager})
	if err != nil {
		return nil, c.denied("patch", gvr, namespace, err)
	}
	return obj, nil
}

// denied rewrites an RBAC denial so that it names the account too.
func (c *objClient) denied(verb string, gvr schema.GroupVersionResource, namespace string, err error) error {
	return permissionError(c.account, verb, gvr, namespace, err)
}

// list lists the objects of a resource in a namespace ("" for all or for a
// cluster-scoped resource) that match a label selector.
func (c *objClient) list(ctx context.Context, gvr schema.GroupVersionResource, namespace, selector string) ([]unstructured.Unstructured, error) {
	l, err := c.resource(gvr, namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, c.denied("list", gvr, namespace, err)
	}
	return l.Items, nil
}
