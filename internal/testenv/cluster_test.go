package testenv_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/baton-gitops/baton/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &env)) }

func deployment(name string, replicas int32, podLabels map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	for k, v := range podLabels {
		labels[k] = v
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: name, Image: "registry.example/" + name + ":1.0.0",
				}}},
			},
		},
	}
}

// waitDeployment watches the Deployment until cond holds or the deadline.
func waitDeployment(t *testing.T, cs kubernetes.Interface, ns, name string, timeout time.Duration, cond func(*appsv1.Deployment) bool) *appsv1.Deployment {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	lw := cache.NewListWatchFromClient(cs.AppsV1().RESTClient(), "deployments", ns, fields.OneTermEqualSelector("metadata.name", name))
	ev, err := watchtools.UntilWithSync(ctx, lw, &appsv1.Deployment{}, nil, func(e watch.Event) (bool, error) {
		d, ok := e.Object.(*appsv1.Deployment)
		return ok && cond(d), nil
	})
	if err != nil {
		d, _ := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		t.Fatalf("deployment %s/%s: condition not met within %s: %v; status: %+v", ns, name, timeout, err, d.Status)
	}
	return ev.Object.(*appsv1.Deployment)
}

func TestDeploymentRollsOut(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	cs := env.Clientset(t)
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deployment("web", 3, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d := waitDeployment(t, cs, ns, "web", time.Minute, func(d *appsv1.Deployment) bool {
		return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == 3 &&
			d.Status.ReadyReplicas == 3 && d.Status.AvailableReplicas == 3
	})
	if d.Status.ReadyReplicas != 3 {
		t.Fatalf("ready replicas = %d, want 3", d.Status.ReadyReplicas)
	}
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q phase %s, want scheduled and Running", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
	}
}

func TestCrashLoopExceedsProgressDeadline(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	cs := env.Clientset(t)
	d := deployment("api", 2, map[string]string{testenv.FailureLabel: testenv.FailCrashLoop})
	d.Spec.ProgressDeadlineSeconds = ptr.To(int32(30))
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got := waitDeployment(t, cs, ns, "api", 2*time.Minute, func(d *appsv1.Deployment) bool {
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse {
				return true
			}
		}
		return false
	})
	var reason string
	for _, c := range got.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing {
			reason = c.Reason
		}
	}
	if reason != "ProgressDeadlineExceeded" {
		t.Fatalf("Progressing reason = %q, want ProgressDeadlineExceeded", reason)
	}
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=api"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods: %v (%d)", err, len(pods.Items))
	}
	st := pods.Items[0].Status.ContainerStatuses
	if len(st) != 1 || st[0].State.Waiting == nil || st[0].State.Waiting.Reason != "CrashLoopBackOff" ||
		st[0].LastTerminationState.Terminated == nil || st[0].LastTerminationState.Terminated.ExitCode != 1 {
		t.Fatalf("container status = %+v, want waiting CrashLoopBackOff after exit 1", st)
	}
}

// TestFailureStages checks that each failure label gives the pod status a
// kubelet would report, since the health tests rely on them.
func TestFailureStages(t *testing.T) {
	t.Parallel()
	ns := env.Namespace(t)
	cs := env.Clientset(t)
	cases := map[string]func(p *corev1.Pod) bool{
		testenv.FailOOMKilled: func(p *corev1.Pod) bool {
			s := p.Status.ContainerStatuses
			return len(s) == 1 && s[0].LastTerminationState.Terminated != nil &&
				s[0].LastTerminationState.Terminated.Reason == "OOMKilled" && s[0].LastTerminationState.Terminated.ExitCode == 137
		},
		testenv.FailImagePull: func(p *corev1.Pod) bool {
			s := p.Status.ContainerStatuses
			return p.Status.Phase == corev1.PodPending && len(s) == 1 && s[0].State.Waiting != nil &&
				s[0].State.Waiting.Reason == "ImagePullBackOff" && strings.Contains(s[0].State.Waiting.Message, s[0].Image)
		},
		testenv.FailNotReady: func(p *corev1.Pod) bool {
			s := p.Status.ContainerStatuses
			return p.Status.Phase == corev1.PodRunning && len(s) == 1 && s[0].State.Running != nil && !s[0].Ready && !podReady(p)
		},
		testenv.FailSlowReady: func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && podReady(p) },
	}
	for failure, cond := range cases {
		t.Run(failure, func(t *testing.T) {
			t.Parallel()
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: failure, Labels: map[string]string{testenv.FailureLabel: failure}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:" + failure}}},
			}
			if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", ns, fields.OneTermEqualSelector("metadata.name", failure))
			_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(e watch.Event) (bool, error) {
				p, ok := e.Object.(*corev1.Pod)
				return ok && cond(p), nil
			})
			if err != nil {
				p, _ := cs.CoreV1().Pods(ns).Get(context.Background(), failure, metav1.GetOptions{})
				t.Fatalf("pod status never matched: %v; status: %+v", err, p.Status)
			}
		})
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestRestrictedServiceAccountIsForbidden(t *testing.T) {
	ns := env.Namespace(t)
	cfg := env.RestrictedConfig(t, ns, rbacv1.PolicyRule{
		APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "create"},
	})
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Allowed by its Role.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "allowed"}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap with the restricted account: %v", err)
	}
	// Not allowed: a cluster-scoped ClusterRole.
	_, err = cs.RbacV1().ClusterRoles().Create(t.Context(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "nope"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create clusterrole: err = %v, want Forbidden", err)
	}
	for _, want := range []string{"cannot create resource \"clusterroles\"", "system:serviceaccount:" + ns} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestAPIServerRestart is not parallel: the other tests need the apiserver.
// Parallel tests start only after it has finished.
func TestAPIServerRestart(t *testing.T) {
	cs := env.Clientset(t)
	env.StopAPIServer(t)
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err == nil {
		t.Fatal("apiserver still answers after StopAPIServer")
	}
	env.StartAPIServer(t)
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestNodeLeasesAreRenewed guards against nodes going NotReady in long
// tests: the node lifecycle controller needs a renewed Lease per node.
func TestNodeLeasesAreRenewed(t *testing.T) {
	t.Parallel()
	cs := env.Clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	lw := cache.NewListWatchFromClient(cs.CoordinationV1().RESTClient(), "leases", "kube-node-lease", fields.OneTermEqualSelector("metadata.name", "kwok-node-0"))
	var first *metav1.MicroTime
	_, err := watchtools.UntilWithSync(ctx, lw, &coordinationv1.Lease{}, nil, func(e watch.Event) (bool, error) {
		l, ok := e.Object.(*coordinationv1.Lease)
		if !ok || l.Spec.RenewTime == nil {
			return false, nil
		}
		if first == nil {
			first = l.Spec.RenewTime
			return false, nil
		}
		return l.Spec.RenewTime.After(first.Time), nil
	})
	if err != nil {
		t.Fatalf("Lease kube-node-lease/kwok-node-0 was not renewed within a minute (first renew time %v): %v", first, err)
	}
}
