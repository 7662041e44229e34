package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/baton-gitops/baton/internal/testenv"
)

// env is the package's control plane: the unit tests in this package are
// pure, the rest run against it.
var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

var (
	gvrConfigMaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecrets     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrDeployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrNamespaces  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// requestCounter counts the API requests of a client (cfg.WrapTransport).
// A watch counts once, when it starts.
type requestCounter struct {
	n atomic.Int64
	// onRequest, if set, runs before each request is sent.
	onRequest func(*http.Request)
}

func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			c.n.Add(1)
			if c.onRequest != nil {
				c.onRequest(r)
			}
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// newReconciler makes a Reconciler on the admin config whose inventory
// lives in the agent namespace of namespace (see agentNamespace); it is
// closed when the test ends.
func newReconciler(t testing.TB, cfg *rest.Config, namespace string, opts Options) *Reconciler {
	t.Helper()
	if cfg == nil {
		cfg = env.Config()
	}
	opts.InventoryNamespace = agentNamespace(t, namespace)
	r, err := New(cfg, opts)
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r
}

// agentNamespace returns the namespace that plays the agent's own for a
// test whose objects live in namespace: "<namespace>-agent", made on first
// use and deleted when the test ends. The agent's namespace is off-limits
// to every environment, so inventories and objects cannot share one.
func agentNamespace(t testing.TB, namespace string) string {
	t.Helper()
	name := namespace + "-agent"
	cs := env.Clientset(t)
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
	case err != nil:
		t.Fatalf("create agent namespace %s: %v", name, err)
	default:
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		})
	}
	return name
}

var nonLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// envName makes an environment name unique to the test: environments share
// the cluster, and names must be DNS labels.
func envName(t testing.TB) string {
	base := strings.Trim(nonLabel.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 30 {
		base = strings.Trim(base[len(base)-30:], "-")
	}
	return base + "-" + randomSuffix()
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func configMap(namespace, name string, data map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap"}}
	u.SetName(name)
	if namespace != "" {
		u.SetNamespace(namespace)
	}
	d := map[string]any{}
	for k, v := range data {
		d[k] = v
	}
	u.Object["data"] = d
	return u
}

func configMaps(namespace string, n int, value string) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, n)
	for i := range n {
		out[i] = configMap(namespace, fmt.Sprintf("cm-%04d", i), map[string]string{"value": value})
	}
	return out
}

// getObject reads a live object with the admin client; nil when missing.
func getObject(t testing.TB, gvr schema.GroupVersionResource, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	ri := env.Dynamic(t).Resource(gvr)
	var (
		obj *unstructured.Unstructured
		err error
	)
	if namespace == "" {
		obj, err = ri.Get(context.Background(), name, metav1.GetOptions{})
	} else {
		obj, err = ri.Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	}
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	return obj
}

// eventually polls cond with a deadline: the waits of these tests are on
// conditions, never on sleeps.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		return cond(), nil
	})
	require.NoError(t, err, "waiting for %s", what)
}

// waitCached waits until the object on the server is in the state check
// accepts (nil: absent) and the reconciler's watch cache has caught up
// with it (the same resourceVersion, or absent), so that a pass sees an
// edit made just before it. Without this a test would race the watch.
func waitCached(t testing.TB, r *Reconciler, envName string, gvr schema.GroupVersionResource, namespace, name string, check func(*unstructured.Unstructured) bool) {
	t.Helper()
	if r.cache == nil {
		return
	}
	eventually(t, "the watch cache to see "+namespace+"/"+name, func() bool {
		live := getObject(t, gvr, namespace, name)
		if !check(live) {
			return false
		}
		known, ok := r.cache.lookup(context.Background(), envName, gvr, namespace, name)
		if !ok {
			return false
		}
		if live == nil {
			return known.obj == nil
		}
		return known.obj != nil && known.obj.ResourceVersion == live.GetResourceVersion()
	})
}

func changeFor(t testing.TB, res Result, kind, name string) Change {
	t.Helper()
	for _, c := range res.Changes {
		if c.Ref.Kind == kind && c.Ref.Name == name {
			return c
		}
	}
	t.Fatalf("no change for %s %s in %+v", kind, name, res.Changes)
	return Change{}
}

func refNames(refs []ObjectRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return out
}
