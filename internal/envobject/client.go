package envobject

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// ErrNoCRD reports that the cluster does not serve Environment objects:
// manifests/environment-crd.yaml is not installed.
var ErrNoCRD = errors.New("the cluster has no Environment resource (baton.dev/v1alpha1): install manifests/environment-crd.yaml")

// FromUnstructured converts an object read with the dynamic client.
func FromUnstructured(u *unstructured.Unstructured) (*Environment, error) {
	var e Environment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &e); err != nil {
		return nil, fmt.Errorf("environment %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &e, nil
}

// Client reads and changes Environment objects in one namespace.
type Client struct {
	dyn       dynamic.Interface
	namespace string
}

// NewClient returns a Client for the objects in namespace.
func NewClient(dyn dynamic.Interface, namespace string) *Client {
	return &Client{dyn: dyn, namespace: namespace}
}

// Namespace is the client's namespace.
func (c *Client) Namespace() string { return c.namespace }

func (c *Client) resource() dynamic.ResourceInterface {
	return c.dyn.Resource(GVR).Namespace(c.namespace)
}

// Get reads the named environment's object.
func (c *Client) Get(ctx context.Context, name string) (*Environment, error) {
	u, err := c.resource().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, c.notFound(ctx, name, err)
	}
	return FromUnstructured(u)
}

// List reads every Environment object of the namespace, by name.
func (c *Client) List(ctx context.Context) ([]Environment, error) {
	l, err := c.resource().List(ctx, metav1.ListOptions{})
	if err != nil {
		if IsNoCRD(err) {
			return nil, ErrNoCRD
		}
		return nil, fmt.Errorf("list environments in %s: %w", c.namespace, err)
	}
	out := make([]Environment, 0, len(l.Items))
	for i := range l.Items {
		e, err := FromUnstructured(&l.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, nil
}

// IsNoCRD reports whether err is the API server saying it serves no such
// resource (as opposed to no such object). Both are 404s; only a missing
// object carries the resource's kind in its details.
func IsNoCRD(err error) bool {
	if errors.Is(err, ErrNoCRD) {
		return true
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsNotFound(err) {
		return false
	}
	d := status.Status().Details
	return d == nil || d.Name == ""
}

// notFound tells a missing object from a missing resource.
func (c *Client) notFound(_ context.Context, name string, err error) error {
	switch {
	case IsNoCRD(err):
		return ErrNoCRD
	case apierrors.IsNotFound(err):
		return fmt.Errorf("no Environment %q in namespace %s: no agent syncs it there (see --namespace)", name, c.namespace)
	}
	return fmt.Errorf("environment %s/%s: %w", c.namespace, name, err)
}

// Ensure creates the named environment's object when it does not exist,
// with only its label (server-side apply, field manager "baton-agent"):
// spec stays the people's.
func (c *Client) Ensure(ctx context.Context, name string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(APIVersion)
	u.SetKind(Kind)
	u.SetName(name)
	u.SetNamespace(c.namespace)
	u.SetLabels(map[string]string{LabelEnvironment: name, "app.kubernetes.io/managed-by": "baton"})
	_, err := c.resource().Apply(ctx, name, u, metav1.ApplyOptions{FieldManager: FieldManagerAgent, Force: true})
	if err != nil {
		if IsNoCRD(err) {
			return ErrNoCRD
		}
		return fmt.Errorf("environment %s/%s: create: %w", c.namespace, name, err)
	}
	return nil
}

// ApplyStatus writes st as the named environment's status (server-side
// apply on the status subresource, field manager "baton-agent").
func (c *Client) ApplyStatus(ctx context.Context, name string, st Status) error {
	obj := map[string]any{"apiVersion": APIVersion, "kind": Kind,
		"metadata": map[string]any{"name": name, "namespace": c.namespace}}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return fmt.Errorf("environment %s/%s: status: %w", c.namespace, name, err)
	}
	obj["status"] = raw
	_, err = c.resource().ApplyStatus(ctx, name, &unstructured.Unstructured{Object: obj},
		metav1.ApplyOptions{FieldManager: FieldManagerAgent, Force: true})
	if err != nil {
		return c.notFound(ctx, name, err)
	}
	return nil
}

// SetSuspend suspends (with who and why) or resumes the named
// environment: a merge patch of spec, field manager "baton-cli". The
// object must exist (the agent creates it).
func (c *Client) SetSuspend(ctx context.Context, name string, suspend bool, by, reason string) (*Environment, error) {
	spec := map[string]any{"suspend": true, "suspendedBy": by, "suspendReason": reason}
	if !suspend {
		spec = map[string]any{"suspend": nil, "suspendedBy": nil, "suspendReason": nil}
	}
	return c.patch(ctx, name, map[string]any{"spec": spec})
}

// RequestSync sets the baton.dev/requestedAt annotation to at (and
// requestedBy to by): the agent polls and syncs at once.
func (c *Client) RequestSync(ctx context.Context, name, at, by string) (*Environment, error) {
	return c.patch(ctx, name, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		AnnotationRequestedAt: at, AnnotationRequestedBy: by}}})
}

func (c *Client) patch(ctx context.Context, name string, patch map[string]any) (*Environment, error) {
	if _, err := c.Get(ctx, name); err != nil {
		return nil, err
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	u, err := c.resource().Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{FieldManager: FieldManagerCLI})
	if err != nil {
		return nil, c.notFound(ctx, name, err)
	}
	return FromUnstructured(u)
}

// Wait watches the named environment until cond holds (or ctx ends), as
// `kubectl wait` does: it lists, then watches from there, and re-lists
// when a watch ends.
func (c *Client) Wait(ctx context.Context, name string, cond func(*Environment) bool) (*Environment, error) {
	if _, err := c.Get(ctx, name); err != nil {
		return nil, err
	}
	sel := "metadata.name=" + name
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = sel
			return c.resource().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			return c.resource().Watch(ctx, o)
		},
	}
	var last *Environment
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("environment %s/%s was deleted", c.namespace, name)
		}
		e, err := FromUnstructured(u)
		if err != nil {
			return false, err
		}
		last = e
		return cond(e), nil
	})
	if err != nil {
		if errors.Is(err, watchtools.ErrWatchClosed) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return last, fmt.Errorf("environment %s/%s: %w", c.namespace, name, context.DeadlineExceeded)
		}
		return last, err
	}
	return last, nil
}

// Watch calls onChange with every Environment object of the namespace as
// it is listed, added, changed or deleted (a deleted object is passed with
// an empty spec), until ctx ends. It returns ErrNoCRD at once when the
// cluster has no Environment resource.
func (c *Client) Watch(ctx context.Context, onChange func(*Environment)) error {
	if _, err := c.List(ctx); err != nil {
		return err
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.resource().List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.resource().Watch(ctx, o)
		},
	}
	handle := func(obj any, deleted bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		e, err := FromUnstructured(u)
		if err != nil {
			return
		}
		if deleted {
			e.Spec = Spec{}
			e.Annotations = nil
		}
		onChange(e)
	}
	_, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    &unstructured.Unstructured{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { handle(obj, false) },
			UpdateFunc: func(_, obj any) { handle(obj, false) },
			DeleteFunc: func(obj any) { handle(obj, true) },
		},
	})
	informer.RunWithContext(ctx)
	return nil
}
