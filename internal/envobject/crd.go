package envobject

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/baton-gitops/baton/internal/statuscond"
	"github.com/baton-gitops/baton/manifests"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD applies manifests/environment-crd.yaml (server-side) and waits
// until the API server serves Environment objects: what `kubectl apply -k
// manifests/` does, for tests and local clusters.
func InstallCRD(ctx context.Context, cfg *rest.Config) error {
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(manifests.EnvironmentCRD, &u.Object); err != nil {
		return fmt.Errorf("environment-crd.yaml: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if _, err := dyn.Resource(crdGVR).Apply(ctx, u.GetName(), &u, metav1.ApplyOptions{FieldManager: "baton-install", Force: true}); err != nil {
		return fmt.Errorf("apply %s: %w", u.GetName(), err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		crd, err := dyn.Resource(crdGVR).Get(ctx, u.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if !statuscond.IsTrue(crd, "Established") {
			return false, nil
		}
		list, err := dc.ServerResourcesForGroupVersion(APIVersion)
		if err != nil {
			return false, nil
		}
		for _, r := range list.APIResources {
			if r.Name == Resource {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to be served: %w", u.GetName(), err)
	}
	return nil
}
