// Package testenv runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from the
// Go module proxy, plus kwok for simulated nodes and pods. Everything listens
// on 127.0.0.1 with free ports; RBAC is on.
//
// One cluster serves a whole test package (see Main); tests isolate
// themselves with Namespace. The programs are built once per machine into
// the cache folder (see package toolcache).
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Cluster is a running control plane.
type Cluster struct {
	dir    string // state, certificates, kubeconfigs and logs
	host   string // https://127.0.0.1:port of the apiserver
	pki    *pki
	admin  *rest.Config
	procs  []*process // in start order; stopped in reverse
	apiMu  sync.Mutex // guards apiserver restarts
	api    *process
	failed bool // keep the folder for inspection
}

// Options tune a cluster. The zero value is what tests want.
type Options struct {
	// Nodes is the number of fake nodes, each with 32 cpu, 256Gi memory and
	// 110 pods. Zero means 3.
	Nodes int
	// Progress receives one line per program built on first use and per
	// start-up step. Nil means os.Stderr.
	Progress interface{ Write([]byte) (int, error) }
}

// Start builds (once) and starts a control plane and waits until it is
// usable: nodes Ready and the default ServiceAccount present. On error
// everything started is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	progress := opts.Progress
	if progress == nil {
		progress = os.Stderr
	}
	bins, err := ensureBinaries(ctx, progress)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "baton-testenv-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{dir: dir}
	defer func() {
		if err != nil {
			c.failed = true
			c.Stop()
			err = fmt.Errorf("%w (component logs in %s)", err, dir)
		}
	}()
	if c.pki, err = newPKI(); err != nil {
		return nil, err
	}
	files, err := c.pki.write(dir)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, cmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	c.host = "https://127.0.0.1:" + strconv.Itoa(apiPort)

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	etcdData := filepath.Join(dir, "etcd")
	if err := os.MkdirAll(etcdData, 0o700); err != nil {
		return nil, err
	}
	etcd := newProcess("etcd", bins.etcd, dir, []string{
		"--name=default", "--data-dir=" + etcdData,
		"--listen-client-urls=" + etcdURL, "--advertise-client-urls=" + etcdURL,
		"--listen-peer-urls=" + peerURL, "--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=default=" + peerURL,
		// Test data needs no durability; fsync dominates etcd's latency.
		"--unsafe-no-fsync=true", "--log-level=warn",
	})
	if err := c.startAndWait(ctx, etcd, func(ctx context.Context) error {
		return httpOK(ctx, http.DefaultClient, etcdURL+"/health")
	}); err != nil {
		return nil, err
	}

	c.api = newProcess("kube-apiserver", bins.apiserver, dir, []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		// The default endpoint reconciler refuses a loopback address.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + files["apiserver.crt"], "--tls-private-key-file=" + files["apiserver.key"],
		"--client-ca-file=" + files["ca.crt"],
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + files["sa.pub"],
		"--service-account-signing-key-file=" + files["sa.key"],
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC",
		"--allow-privileged=true",
		// Without the front-proxy flags the controller-manager and scheduler
		// log a missing CA bundle forever.
		"--requestheader-client-ca-file=" + files["front-proxy-ca.crt"],
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + files["front-proxy-client.crt"],
		"--proxy-client-key-file=" + files["front-proxy-client.key"],
	})
	c.admin = c.clientConfig(c.pki.admin)
	if err := c.startAndWait(ctx, c.api, c.apiReady); err != nil {
		return nil, err
	}

	cmKubeconfig, err := c.writeKubeconfig("kube-controller-manager", c.pki.controllerManager)
	if err != nil {
		return nil, err
	}
	schedKubeconfig, err := c.writeKubeconfig("kube-scheduler", c.pki.scheduler)
	if err != nil {
		return nil, err
	}
	kwokKubeconfig, err := c.writeKubeconfig("kwok", c.pki.kwok)
	if err != nil {
		return nil, err
	}
	if _, err := c.writeKubeconfig("admin", c.pki.admin); err != nil {
		return nil, err
	}
	cm := newProcess("kube-controller-manager", bins.controllerManager, dir, []string{
		"--kubeconfig=" + cmKubeconfig,
		"--authentication-kubeconfig=" + cmKubeconfig, "--authorization-kubeconfig=" + cmKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(cmPort),
		"--cert-dir=" + filepath.Join(dir, "controller-manager-certs"),
		"--use-service-account-credentials",
		"--service-account-private-key-file=" + files["sa.key"],
		"--root-ca-file=" + files["ca.crt"],
		"--cluster-signing-cert-file=" + files["ca.crt"], "--cluster-signing-key-file=" + files["ca.key"],
		"--controllers=*", "--leader-elect=false",
		// The default 20 QPS delays the default ServiceAccount by seconds,
		// and pods are refused until it exists.
		"--kube-api-qps=200", "--kube-api-burst=400",
	})
	schedConfig := filepath.Join(dir, "kube-scheduler.yaml")
	if err := os.WriteFile(schedConfig, []byte(fmt.Sprintf(`apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %q
  qps: 200
  burst: 400
leaderElection:
  leaderElect: false
`, schedKubeconfig)), 0o600); err != nil {
		return nil, err
	}
	sched := newProcess("kube-scheduler", bins.scheduler, dir, []string{
		"--config=" + schedConfig,
		"--authentication-kubeconfig=" + schedKubeconfig, "--authorization-kubeconfig=" + schedKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(schedPort),
		"--cert-dir=" + filepath.Join(dir, "scheduler-certs"),
	})
	stagesPath := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesPath, stagesYAML, 0o600); err != nil {
		return nil, err
	}
	kwokDir := filepath.Join(dir, "kwok")
	if err := os.MkdirAll(kwokDir, 0o700); err != nil {
		return nil, err
	}
	kwok := newProcess("kwok", bins.kwok, dir, []string{
		"--kubeconfig=" + kwokKubeconfig,
		"--config=" + stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + nodeAnnotation + "=fake",
		"--disregard-status-with-label-selector=" + ManualStatusLabel + "=true",
		"--cidr=10.244.0.0/16",
		// kwok renews a Lease per node only when this is set; a config
		// file of Stages alone leaves it 0, and the node lifecycle
		// controller then marks every node NotReady after ~50 s.
		"--node-lease-duration-seconds=40",
		"--node-ip=10.0.0.1",
	},
		// kwok otherwise also reads ~/.kwok/kwok.yaml.
		"KWOK_WORKDIR="+kwokDir)
	for _, p := range []*process{cm, sched, kwok} {
		if err := p.start(); err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
	}
	if err := c.waitUsable(ctx, opts.Nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// startAndWait starts p and waits until ready succeeds, failing early if p
// exits.
func (c *Cluster) startAndWait(ctx context.Context, p *process, ready func(context.Context) error) error {
	if err := p.start(); err != nil {
		return err
	}
	if p != c.api {
		c.procs = append(c.procs, p)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		if done, exitErr := p.exited(); done {
			return fmt.Errorf("%s exited during start-up (%v):\n%s", p.name, exitErr, p.tail(2000))
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", p.name, last)
		case <-time.After(50 * time.Millisecond): // poll interval for a process we cannot watch
		}
	}
}

// Stop stops every process the cluster started, last started first, and
// removes its folder unless a test failed.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.name == "etcd" && c.api != nil {
			c.api.stop(10 * time.Second)
		}
		p.stop(10 * time.Second)
	}
	if c.api != nil {
		c.api.stop(10 * time.Second)
	}
	if !c.failed {
		os.RemoveAll(c.dir)
	}
}

// KeepLogs marks the cluster's folder to be kept after Stop.
func (c *Cluster) KeepLogs() { c.failed = true }

// LogDir is where the components write their logs.
func (c *Cluster) LogDir() string { return c.dir }

// KubeconfigPath is the admin kubeconfig, for tools such as kubectl.
func (c *Cluster) KubeconfigPath() string { return filepath.Join(c.dir, "admin.kubeconfig") }

// Config returns a fresh admin (system:masters) client config.
func (c *Cluster) Config() *rest.Config { return rest.CopyConfig(c.admin) }

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
