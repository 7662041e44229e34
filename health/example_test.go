package health_test

import (
	"context"
	"fmt"
	"time"

	"github.com/baton-gitops/baton/health"
	"k8s.io/client-go/rest"
)

// After applying a revision, wait for its objects and act on the verdict.
// A newer revision cancels ctx, which ends the wait at once.
func ExampleChecker_Wait() {
	var cfg *rest.Config // from the agent's in-cluster config
	checker, err := health.NewChecker(cfg, health.CheckerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	objects := []health.ObjectRef{
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "shop", Name: "api"},
		{Version: "v1", Kind: "Service", Namespace: "shop", Name: "api"},
	}
	rep := checker.Wait(context.Background(), objects, health.WaitOptions{Timeout: 5 * time.Minute})
	switch rep.Overall {
	case health.Healthy:
		fmt.Println("ready")
	case health.Degraded:
		fmt.Printf("failed (%s): %s\n", rep.Cause, rep.Message)
	}
}
