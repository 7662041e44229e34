package testenv

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clientConfig is a client config authenticated by a client certificate.
func (c *Cluster) clientConfig(kp *keyPair) *rest.Config {
	return &rest.Config{
		Host: c.host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.ca.CertPEM,
			CertData: kp.CertPEM,
			KeyData:  kp.KeyPEM,
		},
		// Tests create many objects quickly; client-go's 5/10 would
		// throttle them.
		QPS:   200,
		Burst: 400,
	}
}

// writeKubeconfig writes <name>.kubeconfig for a component and returns its path.
func (c *Cluster) writeKubeconfig(name string, kp *keyPair) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["testenv"] = &clientcmdapi.Cluster{Server: c.host, CertificateAuthorityData: c.pki.ca.CertPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["testenv"] = &clientcmdapi.Context{Cluster: "testenv", AuthInfo: name}
	cfg.CurrentContext = "testenv"
	path := filepath.Join(c.dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// apiReady asks the apiserver's /readyz with the admin identity.
func (c *Cluster) apiReady(ctx context.Context) error {
	transport, err := rest.TransportFor(c.admin)
	if err != nil {
		return err
	}
	return httpOK(ctx, &http.Client{Transport: transport, Timeout: 5 * time.Second}, c.host+"/readyz")
}

// waitUsable creates the fake nodes and waits until they are Ready and the
// default ServiceAccount exists (pods are refused before it does).
func (c *Cluster) waitUsable(ctx context.Context, nodes int) error {
	if err := c.EnsureNodes(ctx, nodes); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return c.poll(ctx, "default ServiceAccount present", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// EnsureNodes makes the cluster have at least n fake nodes (110 pods each)
// and waits until they are Ready: for benchmarks whose pods outgrow the
// default 3 nodes. The nodes stay until the cluster stops.
func (c *Cluster) EnsureNodes(ctx context.Context, n int) error {
	cs, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := c.createNodes(ctx, cs, n); err != nil {
		return err
	}
	return c.poll(ctx, fmt.Sprintf("%d nodes Ready", n), func(ctx context.Context) (bool, error) {
		ready, err := readyNodes(ctx, cs)
		return err == nil && ready >= n, nil
	})
}

// createNodes creates kwok-node-0 to kwok-node-<n-1>, skipping those that
// exist.
func (c *Cluster) createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	for i := range n {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        fmt.Sprintf("kwok-node-%d", i),
				Annotations: map[string]string{nodeAnnotation: "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": fmt.Sprintf("kwok-node-%d", i),
					"kubernetes.io/os":       "linux",
					"type":                   "kwok",
				},
			},
			Status: corev1.NodeStatus{
				Allocatable: nodeResources(),
				Capacity:    nodeResources(),
			},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", node.Name, err)
		}
	}
	return nil
}

// readyNodes counts the nodes whose Ready condition is True.
func readyNodes(ctx context.Context, cs kubernetes.Interface) (int, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	ready := 0
	for _, n := range list.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, nil
}

func nodeResources() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
}

// poll checks cond until it holds, a component dies, or ctx ends. It is
// for start-up, before a watch can be trusted; tests should watch instead.
func (c *Cluster) poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		for _, p := range append([]*process{c.api}, c.procs...) {
			if done, exitErr := p.exited(); done {
				return fmt.Errorf("wait for %s: %s exited (%v):\n%s", what, p.name, exitErr, p.tail(2000))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Clientset is a typed admin client.
func (c *Cluster) Clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		t.Fatalf("testenv: clientset: %v", err)
	}
	return cs
}

// Dynamic is a dynamic admin client.
func (c *Cluster) Dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	dc, err := dynamic.NewForConfig(c.Config())
	if err != nil {
		t.Fatalf("testenv: dynamic client: %v", err)
	}
	return dc
}
