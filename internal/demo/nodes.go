package demo

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// KeepNodesAlive renews a Lease in kube-node-lease for every node every 5
// seconds until ctx ends, as kubelets do. It returns when the first renewal
// is done; errors of later renewals go to report (nil ignores them). The
// returned channel is closed when the renewals have stopped.
//
// WHY: the local control plane's kwok runs without node leases and refreshes
// node conditions only every 10 minutes or so, while kube-controller-manager
// marks nodes NotReady after 50s without a heartbeat and then sets every
// pod's Ready condition to False, which kwok never undoes: a demo (or a
// test) that lasts more than 50s would find its workloads unhealthy. Drop
// this once internal/testenv runs kwok with --node-lease-duration-seconds.
func KeepNodesAlive(ctx context.Context, cs kubernetes.Interface, report func(error)) (<-chan struct{}, error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	leases := cs.CoordinationV1().Leases("kube-node-lease")
	renew := func() error {
		now := metav1.NewMicroTime(time.Now())
		for _, n := range nodes.Items {
			l, err := leases.Get(ctx, n.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: n.Name},
					Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.Name), LeaseDurationSeconds: ptr.To[int32](40),
						RenewTime: &now}}, metav1.CreateOptions{})
			} else if err == nil {
				l.Spec.RenewTime = &now
				_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
			}
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("renew Lease/kube-node-lease/%s: %w", n.Name, err)
			}
		}
		return nil
	}
	if err := renew(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if err := renew(); err != nil && report != nil {
					report(err)
				}
			}
		}
	}()
	return done, nil
}
