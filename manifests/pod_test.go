package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// pod stands in for the kubelet: it lays out an installed pod's volumes
// under a folder of the host, so that the agent runs as a process with the
// Deployment's arguments, environment and files. A path the container
// sees, such as /etc/baton/config/baton.yaml, is root + that path. What the
// kubelet would do and this does not: namespaces, cgroups, the read-only
// root — the image tests cover the image itself.
type pod struct {
	root      string
	name, ns  string
	container corev1.Container
	mounts    []string // mount paths, longest first
}

// newPod materialises the volumes of the pod's first container from the
// API, as the kubelet would: ConfigMap and Secret keys as files (a missing
// optional Secret is an empty folder), emptyDirs as empty folders.
func newPod(t *testing.T, cs kubernetes.Interface, p *corev1.Pod) *pod {
	t.Helper()
	ctx := t.Context()
	pd := &pod{root: t.TempDir(), name: p.Name, ns: p.Namespace, container: p.Spec.Containers[0]}
	volumes := map[string]corev1.Volume{}
	for _, v := range p.Spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range pd.container.VolumeMounts {
		dir := pd.path(m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		pd.mounts = append(pd.mounts, m.MountPath)
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("mount %s names no volume", m.Name)
		}
		files := map[string][]byte{}
		switch {
		case v.EmptyDir != nil:
		case v.Projected != nil && projectsToken(v.Projected):
			// The service account's token, CA and namespace, which
			// serviceAccountKubeconfig writes.
		case v.ConfigMap != nil:
			cm, err := cs.CoreV1().ConfigMaps(p.Namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("volume %s: %v", v.Name, err)
			}
			for k, s := range cm.Data {
				files[k] = []byte(s)
			}
		case v.Secret != nil:
			s, err := cs.CoreV1().Secrets(p.Namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err) && v.Secret.Optional != nil && *v.Secret.Optional:
			case err != nil:
				t.Fatalf("volume %s: %v", v.Name, err)
			default:
				files = s.Data
			}
		default:
			t.Fatalf("volume %s: a kind this stand-in does not lay out: extend newPod", v.Name)
		}
		for k, b := range files {
			if err := os.WriteFile(filepath.Join(dir, k), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	slices.SortFunc(pd.mounts, func(a, b string) int { return len(b) - len(a) })
	return pd
}

func projectsToken(p *corev1.ProjectedVolumeSource) bool {
	for _, s := range p.Sources {
		if s.ServiceAccountToken != nil {
			return true
		}
	}
	return false
}

// path is where the container's path p lies on the host.
func (p *pod) path(s string) string { return filepath.Join(p.root, s) }

// rebase maps a container path under one of the mounts to the host; other
// strings are returned as they are.
func (p *pod) rebase(s string) string {
	for _, m := range p.mounts {
		if s == m || strings.HasPrefix(s, m+"/") {
			return p.path(s)
		}
	}
	return s
}

// env is the container's environment as the kubelet resolves it. Only the
// sources the Deployment uses are known; another fails the test.
func (p *pod) env(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range p.container.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expandVars(e.Value, env)
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = p.name
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = p.ns
		default:
			t.Fatalf("env %s: a source this stand-in does not resolve: extend pod.env", e.Name)
		}
	}
	return env
}

// args are the container's arguments with $(VAR) references expanded as
// the kubelet does and flag values under a mount rebased.
func (p *pod) args(env map[string]string) []string {
	var out []string
	for _, a := range append(slices.Clone(p.container.Command), p.container.Args...) {
		a = expandVars(a, env)
		if flag, value, ok := strings.Cut(a, "="); ok && strings.HasPrefix(flag, "-") {
			a = flag + "=" + p.rebase(value)
		} else {
			a = p.rebase(a)
		}
		out = append(out, a)
	}
	return out
}

// expandVars replaces $(NAME) with env's value, as the kubelet expands
// arguments; $$ escapes a dollar; an unknown name stays as written.
func expandVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "$("):
			end := strings.IndexByte(s[i:], ')')
			if v, ok := env[s[i+2:i+max(end, 2)]]; end > 0 && ok {
				b.WriteString(v)
				i += end
				continue
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// serviceAccountKubeconfig writes what the kubelet projects into every
// pod — the ServiceAccount token, the cluster's CA and the namespace under
// /var/run/secrets/kubernetes.io/serviceaccount — and a kubeconfig that
// uses them. The token is a TokenRequest bound to the pod, as the kubelet
// asks for it. client-go reads that folder only at its fixed path, so the
// agent finds the kubeconfig through $KUBECONFIG, the one variable this
// stand-in adds to the container's environment.
func (p *pod) serviceAccountKubeconfig(t *testing.T, cs kubernetes.Interface, live *corev1.Pod, host string, ca []byte) string {
	t.Helper()
	expiry := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(p.ns).CreateToken(t.Context(), live.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: live.Name, UID: live.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s bound to pod %s: %v", p.ns, live.Spec.ServiceAccountName, live.Name, err)
	}
	dir := p.path("/var/run/secrets/kubernetes.io/serviceaccount")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"token": []byte(tok.Status.Token), "ca.crt": ca, "namespace": []byte(p.ns)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["in-cluster"] = &clientcmdapi.Cluster{Server: host, CertificateAuthority: filepath.Join(dir, "ca.crt")}
	kc.AuthInfos["service-account"] = &clientcmdapi.AuthInfo{TokenFile: filepath.Join(dir, "token")}
	kc.Contexts["in-cluster"] = &clientcmdapi.Context{Cluster: "in-cluster", AuthInfo: "service-account", Namespace: p.ns}
	kc.CurrentContext = "in-cluster"
	path := filepath.Join(p.root, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// configEdit is one change a user makes to manifests/baton.yaml before
// installing: a field, found by kyaml path, set to a value.
type configEdit struct {
	path  []string
	field string
	value string
	// remove deletes the field instead of setting it.
	remove bool
}

// editConfig applies the user's edits to the pod's configuration file,
// then rebases every path under a mount (tokenFile, cacheDir...) onto the
// host. An edit whose field's parent is missing fails the test: the
// example configuration changed shape.
func (p *pod) editConfig(t *testing.T, file string, edits []configEdit) {
	t.Helper()
	node, err := kyaml.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		parent, err := node.Pipe(kyaml.Lookup(e.path...))
		if err != nil || parent == nil {
			t.Fatalf("baton.yaml has no %s: adapt the test to manifests/baton.yaml", strings.Join(e.path, "."))
		}
		var op kyaml.Filter = kyaml.Clear(e.field)
		if !e.remove {
			// The value is YAML: "false" is a boolean, "[a, b]" a list.
			value, err := kyaml.Parse(e.value)
			if err != nil {
				t.Fatalf("baton.yaml %s.%s: value %q: %v", strings.Join(e.path, "."), e.field, e.value, err)
			}
			op = kyaml.SetField(e.field, value)
		}
		if err := parent.PipeE(op); err != nil {
			t.Fatalf("baton.yaml %s.%s: %v", strings.Join(e.path, "."), e.field, err)
		}
	}
	var walk func(n *kyaml.Node)
	walk = func(n *kyaml.Node) {
		switch n.Kind {
		case kyaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case kyaml.SequenceNode, kyaml.DocumentNode:
			for _, c := range n.Content {
				walk(c)
			}
		case kyaml.ScalarNode:
			n.Value = p.rebase(n.Value)
		}
	}
	walk(node.YNode())
	out, err := node.String()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// String is the pod for messages.
func (p *pod) String() string { return fmt.Sprintf("pod %s/%s", p.ns, p.name) }
