package testenv

import (
	"context"
	"io"
	"path/filepath"

	"github.com/baton-gitops/baton/internal/testenv/toolcache"
)

// Versions of the control plane the tests run. Changing one builds a new
// cache folder; the old one can be removed with `make clean-cache`.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.6.16"
	KwokVersion       = "v0.8.0"
)

// binaries are the paths of the control plane's programs.
type binaries struct {
	etcd, apiserver, controllerManager, scheduler, kwok string
}

// EnsureBinaries builds the control plane's programs into the cache once,
// printing a progress line per program to progress. It is what `make test`
// runs first, so the build's progress shows before the tests start.
func EnsureBinaries(ctx context.Context, progress io.Writer) error {
	_, err := ensureBinaries(ctx, progress)
	return err
}

func ensureBinaries(ctx context.Context, progress io.Writer) (binaries, error) {
	kubeLDFlags := "-s -w" +
		" -X k8s.io/component-base/version.gitVersion=" + KubernetesVersion +
		" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
	kubeProgram := func(name string) toolcache.Program {
		return toolcache.Program{Name: name, Build: func(ctx context.Context, dir string) error {
			return toolcache.GoBuild(ctx, "kube", filepath.Join(dir, name), "-ldflags", kubeLDFlags, "k8s.io/kubernetes/cmd/"+name)
		}}
	}
	etcdDir, err := toolcache.Ensure(ctx, toolcache.Tool{
		Name: "etcd", Version: EtcdVersion,
		Programs: []toolcache.Program{{Name: "etcd", Build: func(ctx context.Context, dir string) error {
			return toolcache.GoBuild(ctx, "etcd", filepath.Join(dir, "etcd"), "-ldflags", "-s -w", "go.etcd.io/etcd/server/v3")
		}}},
	}, progress)
	if err != nil {
		return binaries{}, err
	}
	kubeDir, err := toolcache.Ensure(ctx, toolcache.Tool{
		Name: "kubernetes", Version: KubernetesVersion,
		Programs: []toolcache.Program{kubeProgram("kube-apiserver"), kubeProgram("kube-controller-manager"), kubeProgram("kube-scheduler")},
	}, progress)
	if err != nil {
		return binaries{}, err
	}
	kwokDir, err := toolcache.Ensure(ctx, toolcache.Tool{
		Name: "kwok", Version: KwokVersion,
		Programs: []toolcache.Program{{Name: "kwok", Build: func(ctx context.Context, dir string) error {
			return toolcache.GoBuild(ctx, "kube", filepath.Join(dir, "kwok"), "-ldflags", "-s -w", "sigs.k8s.io/kwok/cmd/kwok")
		}}},
	}, progress)
	if err != nil {
		return binaries{}, err
	}
	return binaries{
		etcd:              filepath.Join(etcdDir, "etcd"),
		apiserver:         filepath.Join(kubeDir, "kube-apiserver"),
		controllerManager: filepath.Join(kubeDir, "kube-controller-manager"),
		scheduler:         filepath.Join(kubeDir, "kube-scheduler"),
		kwok:              filepath.Join(kwokDir, "kwok"),
	}, nil
}
