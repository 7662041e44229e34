package health

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// computeCases are the status fixtures (testdata/status) with the status
// and message Compute must give. Messages are patterns because captured
// names are random.
var computeCases = []struct {
	fixture string
	opts    StatusOptions
	status  Status
	message string
}{
	{fixture: "deployment-current", status: Current, message: `^3/3 pods available$`},
	{fixture: "deployment-progressing", status: InProgress, message: `^0/2 updated pods available$`},
	{fixture: "deployment-paused", status: Current, message: `^rollout paused$`},
	{fixture: "deployment-deadline", status: Failed, message: `^progress deadline exceeded: ReplicaSet "late-[a-z0-9]+" has timed out progressing\.$`},
	{fixture: "deployment-quota", status: InProgress, message: `^1/3 pods updated$`},
	{fixture: "statefulset-current", status: Current, message: `^2/2 pods ready$`},
	{fixture: "statefulset-partition", status: Current, message: `^partitioned rollout: 1/1 pods updated$`},
	{fixture: "statefulset-not-ready", status: InProgress, message: `^1/2 pods created$`},
	{fixture: "daemonset-current", status: Current, message: `^3/3 pods available$`},
	{fixture: "replicaset-quota", status: InProgress, message: `^0/2 pods available$`},
	{fixture: "pod-running", status: Current, message: `^running and ready$`},
	{fixture: "pod-unschedulable", status: InProgress, message: `^not scheduled: 0/3 nodes are available: 3 Insufficient cpu\.`},
	{fixture: "pod-failed", status: Failed, message: `^pod failed: Evicted: The node was low on resource: memory\.$`},
	{fixture: "job-complete", status: Current, message: `^completed$`},
	{fixture: "job-running", status: InProgress, message: `^1 active, 0/1 succeeded$`},
	{fixture: "job-failed", status: Failed, message: `^job failed: DeadlineExceeded: Job was active longer than specified deadline$`},
	{fixture: "cronjob", status: Current, message: `^not yet scheduled$`},
	{fixture: "pvc-pending", status: Current, message: `^pending, no provisioner has taken it \(its class waits for a first consumer, or has no provisioner\): not awaited$`},
	{fixture: "pvc-wait-for-consumer", status: Current, message: `^pending, no provisioner has taken it .*: not awaited$`},
	{fixture: "pvc-provisioning", status: InProgress, message: `^waiting for example\.com/never to provision a volume$`},
	{fixture: "pvc-bound", status: Current, message: `^bound to [a-z0-9-]+-data$`},
	{fixture: "service-clusterip", status: Current, message: `^$`},
	{fixture: "service-lb-pending", status: InProgress, message: `^waiting for a load-balancer address \(.*health\.loadBalancers: skip to not wait\)$`},
	{fixture: "service-lb-pending", opts: StatusOptions{SkipLoadBalancer: true}, status: Current, message: `^no load-balancer address yet, not awaited \(health\.loadBalancers: wait to wait for it\)$`},
	{fixture: "service-lb-ready", status: Current, message: `^load balancer at 203\.0\.113\.10$`},
	{fixture: "namespace-active", status: Current, message: `^active$`},
	{fixture: "crd-established", status: Current, message: `^established$`},
	{fixture: "apiservice-local", status: Current, message: `^available$`},
	{fixture: "pdb", status: Current, message: `^1 disruption allowed, 3/2 healthy$`},
	{fixture: "hpa", status: Current, message: `^scaling inactive: ScalingActive=False \(FailedGetResourceMetric: .+\)$`},
	{fixture: "hpa-no-target", status: InProgress, message: `^AbleToScale=False \(FailedGetScale: .+\)$`},
	{fixture: "configmap", status: Current, message: `^$`},
	{fixture: "configmap-terminating", status: Terminating, message: `^being deleted$`},
	{fixture: "custom-no-status", status: Current, message: `^$`},
	{fixture: "custom-ready", status: Current, message: `^Ready=True \(Reconciled: all good\)$`},
	{fixture: "custom-not-ready", status: InProgress, message: `^Ready=False \(Provisioning: waiting for the volume\)$`},
	{fixture: "custom-stalled", status: Failed, message: `^Stalled=True \(InvalidSpec: size must be even\)$`},
	{fixture: "custom-succeeded-false", status: Failed, message: `^Succeeded=False \(BuildFailed: step compile exited 2\)$`},
	{fixture: "custom-available", status: Current, message: `^Available=True \(MinimumReplicasAvailable\)$`},
	{fixture: "custom-generation-behind", status: InProgress, message: `^generation 2 not yet observed by its controller \(observed 1\)$`},
}

func TestCompute(t *testing.T) {
	for _, tc := range computeCases {
		name := tc.fixture
		if tc.opts.SkipLoadBalancer {
			name += "/skip-load-balancer"
		}
		t.Run(name, func(t *testing.T) {
			obj := loadObject(t, "status/"+tc.fixture)
			before := obj.DeepCopy()
			got := ComputeWith(obj, tc.opts)
			if got.Status != tc.status {
				t.Errorf("status = %s, want %s (message %q)", got.Status, tc.status, got.Message)
			}
			if !regexp.MustCompile(tc.message).MatchString(got.Message) {
				t.Errorf("message = %q, want match for %s", got.Message, tc.message)
			}
			if !equality.Semantic.DeepEqual(before.Object, obj.Object) {
				t.Error("Compute modified the object")
			}
		})
	}
}

// TestComputeCoversEveryKind fails when a kind with its own status
// function has no fixture, or a fixture has no case.
func TestComputeCoversEveryKind(t *testing.T) {
	covered := map[schema.GroupKind]bool{}
	used := map[string]bool{}
	for _, tc := range computeCases {
		used[tc.fixture] = true
		covered[loadObject(t, "status/"+tc.fixture).GroupVersionKind().GroupKind()] = true
	}
	for gk := range kindFuncs {
		if !covered[gk] {
			t.Errorf("no status fixture for %s", gk)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "status", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".yaml"); !used[name] {
			t.Errorf("fixture %s has no case in computeCases", f)
		}
	}
}

func TestComputeNil(t *testing.T) {
	if got := Compute(nil); got.Status != Unknown {
		t.Errorf("Compute(nil) = %v, want Unknown", got)
	}
}

// TestComputeMalformed: a custom resource with a status of the wrong shape
// must not panic and must not pass as ready by accident of a parse error.
func TestComputeMalformed(t *testing.T) {
	obj := loadObject(t, "status/custom-not-ready")
	obj.Object["status"] = map[string]any{"conditions": "Ready"}
	if got := Compute(obj); got.Status != Current {
		// Unreadable conditions read as none, and no conditions mean
		// nothing to wait for.
		t.Errorf("Compute = %v, want Current", got)
	}
	dep := loadObject(t, "status/deployment-current")
	_ = unstructured.SetNestedField(dep.Object, "three", "status", "availableReplicas")
	if got := Compute(dep); got.Status != InProgress {
		t.Errorf("Compute of a Deployment with a non-numeric availableReplicas = %v, want InProgress", got)
	}
}
