package reconciler

import (
	"context"
	"fmt"
	"net/http"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/baton-gitops/baton/internal/discoverymapper"
)

// newDiscoveryMapper returns the discovery mapper (internal/discoverymapper):
// it reads discovery once, keeps it in memory, and re-reads it after
// ResetWithContext — which a pass calls when a CRD of its revision becomes
// Established, and once per pass when it meets a kind that discovery did not
// know.
func newDiscoveryMapper(cfg *rest.Config, httpClient *http.Client) (*restmapper.DeferredDiscoveryRESTMapper, error) {
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	return discoverymapper.New(dc), nil
}

var _ mapper = (*restmapper.DeferredDiscoveryRESTMapper)(nil)

// resettable is the part of the discovery mapper a pass resets.
type resettable interface {
	ResetWithContext(ctx context.Context)
}
