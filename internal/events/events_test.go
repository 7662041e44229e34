package events_test

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/events"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

const (
	revA   = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	revB   = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
	author = "Jane Doe <jane@example.com>"
)

// counting is a Next recorder that counts the records passed on.
type counting struct {
	mu                                 sync.Mutex
	syncs, healths, promotions, leader int
}

func (c *counting) SyncDone(agent.SyncRecord)           { c.mu.Lock(); c.syncs++; c.mu.Unlock() }
func (c *counting) HealthChanged(agent.HealthRecord)    { c.mu.Lock(); c.healths++; c.mu.Unlock() }
func (c *counting) PromotionDone(agent.PromotionRecord) { c.mu.Lock(); c.promotions++; c.mu.Unlock() }
func (c *counting) LeaderChanged(bool)                  { c.mu.Lock(); c.leader++; c.mu.Unlock() }
func (c *counting) EnvironmentReleased(string)          {}

func syncRec(rev string, result string) agent.SyncRecord {
	return agent.SyncRecord{Environment: "dev", Branch: "env/dev", Revision: rev, Author: author, Result: result,
		Counts: map[string]int{"created": 2, "unchanged": 3}}
}

func TestEventsTellTheEnvironmentsStory(t *testing.T) {
	ns := env.Namespace(t)
	cs := env.Clientset(t)
	// dev has an inventory (it synced before); prod has none yet.
	inv, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: inventory.ConfigMapName("dev")}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := &counting{}
	r, err := events.New(env.Config(), events.Options{Namespace: ns, Host: "baton-0", Next: next})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	r.LeaderChanged(true)
	r.SyncDone(syncRec(revA, agent.SyncSucceeded))
	r.SyncDone(syncRec(revA, agent.SyncSucceeded)) // a resync: not news
	failed := syncRec(revB, agent.SyncFailed)
	failed.FailedStage, failed.Error = agent.StageRender, "render repo@env/dev:overlays/dev: kustomization.yaml: unknown field"
	r.SyncDone(failed)
	drifted := syncRec(revB, agent.SyncSucceeded)
	drifted.Drifted, drifted.Pruned, drifted.DriftMode = 2, 1, "correct"
	r.SyncDone(drifted)
	r.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: revB, Status: "Degraded", Cause: "crashloop",
		Message: "Deployment/shop/web: pod web-1 container web in CrashLoopBackOff"})
	r.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: revB, Status: "Degraded", Cause: "crashloop"})
	// A fix rolls out (progressing, no event), then dev is healthy again.
	r.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: revB, Status: "Progressing"})
	r.HealthChanged(agent.HealthRecord{Environment: "dev", Revision: revB, Status: "Healthy"})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionBlocked, Reason: "soak"})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionFrozen, Detail: "dev is degraded"})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionFrozen, Detail: "dev is degraded"})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionHeld})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionPushed})
	refused := syncRec(revB, agent.SyncFailed)
	refused.FailedStage, refused.Refused = agent.StageApply, "namespace"
	refused.Error = `refused: 1 object(s) outside what the environment may write: ConfigMap/kube-system/x (from overlays/dev/x.yaml:1): namespace "kube-system" is not in the environment's scope`
	r.SyncDone(refused)
	r.SyncDone(agent.SyncRecord{Environment: "prod", Result: agent.SyncFailed, FailedStage: agent.StageSource,
		Error: "ls-remote https://git.example.com/deploy.git: authentication failed"})

	want := []string{"Synced", "SyncFailed", "Synced", "Drifted", "Pruned", "HealthDegraded", "Recovered",
		"PromotionFrozen", "PromotionHeld", "Promoted", "SyncRefused", "SyncFailed"}
	got := waitEvents(t, ns, len(want))
	var reasons []string
	for _, e := range got {
		reasons = append(reasons, e.Reason)
	}
	if strings.Join(reasons, " ") != strings.Join(want, " ") {
		t.Fatalf("reasons %v, want %v", reasons, want)
	}

	for i, e := range got[:len(got)-1] {
		if e.InvolvedObject.Kind != "ConfigMap" || e.InvolvedObject.Name != inv.Name || e.InvolvedObject.UID != inv.UID {
			t.Errorf("event %d %s regards %+v, want dev's inventory %s (uid %s)", i, e.Reason, e.InvolvedObject, inv.Name, inv.UID)
		}
		if e.Annotations[events.AnnotationAuthor] != author || e.Annotations[events.AnnotationEnvironment] != "dev" {
			t.Errorf("event %d %s annotations %v", i, e.Reason, e.Annotations)
		}
		if !strings.Contains(e.Message, author) || !strings.Contains(e.Message, revB[:12]) && !strings.Contains(e.Message, revA[:12]) {
			t.Errorf("event %d %s message %q: want the revision and its author", i, e.Reason, e.Message)
		}
		if e.Source.Component != "baton" || e.Source.Host != "baton-0" {
			t.Errorf("event %d source %+v", i, e.Source)
		}
	}
	byReason := map[string]corev1.Event{}
	for _, e := range got {
		byReason[e.Reason] = e
	}
	if e := byReason["SyncFailed"]; e.Type != corev1.EventTypeWarning {
		t.Errorf("SyncFailed type %s", e.Type)
	}
	if e := got[1]; !strings.Contains(e.Message, "at render: render repo@env/dev:overlays/dev") ||
		e.Annotations[events.AnnotationRevision] != revB {
		t.Errorf("SyncFailed %q %v: want the stage, the error and the revision", e.Message, e.Annotations)
	}
	if e := byReason["SyncRefused"]; e.Type != corev1.EventTypeWarning ||
		!strings.HasPrefix(e.Message, "sync of "+revB[:12]) || !strings.Contains(e.Message, " refused (namespace) at apply: refused: 1 object(s)") ||
		!strings.Contains(e.Message, "overlays/dev/x.yaml:1") {
		t.Errorf("SyncRefused %s %q", e.Type, e.Message)
	}
	if e := byReason["HealthDegraded"]; !strings.Contains(e.Message, "(crashloop): Deployment/shop/web") {
		t.Errorf("HealthDegraded message %q", e.Message)
	}
	if e := byReason["Drifted"]; !strings.Contains(e.Message, "2 objects drifted") || !strings.Contains(e.Message, "corrected") {
		t.Errorf("Drifted message %q", e.Message)
	}
	if e := byReason["Promoted"]; e.Annotations[events.AnnotationTo] != "staging" || !strings.Contains(e.Message, "from dev to staging") {
		t.Errorf("Promoted %q %v", e.Message, e.Annotations)
	}
	// prod has no inventory yet: the Event names it without a UID.
	if e := got[len(got)-1]; e.InvolvedObject.Name != inventory.ConfigMapName("prod") || e.InvolvedObject.UID != "" ||
		!strings.Contains(e.Message, "authentication failed") {
		t.Errorf("prod's event %+v %q", e.InvolvedObject, e.Message)
	}

	next.mu.Lock()
	defer next.mu.Unlock()
	if next.syncs != 6 || next.healths != 4 || next.promotions != 5 || next.leader != 1 {
		t.Errorf("next saw %d syncs, %d healths, %d promotions, %d leader changes; want every record: 6, 4, 5, 1",
			next.syncs, next.healths, next.promotions, next.leader)
	}
}

func TestAStandbyForgetsWhatItReported(t *testing.T) {
	ns := env.Namespace(t)
	r, err := events.New(env.Config(), events.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	r.LeaderChanged(true)
	r.SyncDone(syncRec(revA, agent.SyncSucceeded))
	r.LeaderChanged(false)
	r.LeaderChanged(true)
	r.SyncDone(syncRec(revA, agent.SyncSucceeded)) // news to the new leadership
	// The same message twice on one object: client-go counts it on one
	// Event rather than writing a second.
	cs := env.Clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var last []corev1.Event
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		last = list.Items
		return len(last) == 1 && last[0].Reason == events.ReasonSynced && last[0].Count == 2, nil
	})
	if err != nil {
		t.Fatalf("want one Synced event counted twice, got %+v", last)
	}
	r.Close()
	r.SyncDone(syncRec(revB, agent.SyncSucceeded)) // after Close: dropped, no panic
}

func TestNewNeedsANamespace(t *testing.T) {
	if _, err := events.New(env.Config(), events.Options{}); err == nil || !strings.Contains(err.Error(), "Namespace is required") {
		t.Fatalf("error %v", err)
	}
}

// waitEvents lists the namespace's Events until n exist, oldest first. A
// poll: the broadcaster writes them in the background, and a list shows
// what a watch would, more simply.
func waitEvents(t *testing.T, ns string, n int) []corev1.Event {
	t.Helper()
	cs := env.Clientset(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var items []corev1.Event
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		items = list.Items
		return len(items) >= n, nil
	})
	if err != nil {
		t.Fatalf("%d events, want %d: %v", len(items), n, items)
	}
	sortEvents(items)
	return items
}

// sortEvents orders Events by resource version: the broadcaster writes
// them one after the other, and none of these is updated (aggregated) after
// its creation.
func sortEvents(items []corev1.Event) {
	rv := func(e corev1.Event) int64 {
		n, _ := strconv.ParseInt(e.ResourceVersion, 10, 64)
		return n
	}
	sort.Slice(items, func(i, j int) bool { return rv(items[i]) < rv(items[j]) })
}

// With the Environment resource installed and the agent's object there,
// the Events are recorded on it (kubectl describe environment dev).
func TestEventsOnTheEnvironmentObject(t *testing.T) {
	if err := envobject.InstallCRD(t.Context(), env.Config()); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	objects := envobject.NewClient(env.Dynamic(t), ns)
	if err := objects.Ensure(t.Context(), "dev"); err != nil {
		t.Fatal(err)
	}
	obj, err := objects.Get(t.Context(), "dev")
	if err != nil {
		t.Fatal(err)
	}
	r, err := events.New(env.Config(), events.Options{Namespace: ns, Host: "baton-0"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SyncDone(syncRec(revA, agent.SyncSucceeded))
	got := waitEvents(t, ns, 1)
	if e := got[0].InvolvedObject; e.Kind != envobject.Kind || e.APIVersion != envobject.APIVersion || e.Name != "dev" || e.UID != obj.UID {
		t.Fatalf("the Synced event regards %+v, want Environment dev (uid %s)", e, obj.UID)
	}
}

// A merged promotion is recorded on the source's inventory, and so is a
// revert on the target's.
func TestPromotionMergedAndReverted(t *testing.T) {
	ns := env.Namespace(t)
	cs := env.Clientset(t)
	for _, name := range []string{"dev", "staging"} {
		if _, err := cs.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: inventory.ConfigMapName(name)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := events.New(env.Config(), events.Options{Namespace: ns, Host: "baton-0"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionUpToDate,
		Events: []agent.PromotionEvent{{Kind: "merged", SourceCommit: revA, TargetCommit: revB, PullRequest: 7,
			Message: "dev@a1a1a1a landed on env/staging as b2b2b2b, by Jane (pull request #7)"}}})
	r.PromotionDone(agent.PromotionRecord{From: "dev", To: "staging", Revision: revB, Outcome: agent.PromotionReverted})
	got := waitEvents(t, ns, 2)
	byReason := map[string]corev1.Event{}
	for _, e := range got {
		byReason[e.Reason] = e
	}
	if e := byReason[events.ReasonPromotionMerged]; e.InvolvedObject.Name != inventory.ConfigMapName("dev") ||
		!strings.Contains(e.Message, "pull request #7") {
		t.Errorf("PromotionMerged on %s: %q", e.InvolvedObject.Name, e.Message)
	}
	if e := byReason[events.ReasonPromotionReverted]; e.InvolvedObject.Name != inventory.ConfigMapName("staging") ||
		e.Type != corev1.EventTypeWarning {
		t.Errorf("PromotionReverted on %s (%s): %q", e.InvolvedObject.Name, e.Type, e.Message)
	}
}

// An environment of a named pipeline (one of several applications): its
// Events carry the pipeline, and promotion messages name it.
func TestEventsNameThePipeline(t *testing.T) {
	ns := env.Namespace(t)
	if _, err := env.Clientset(t).CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: inventory.ConfigMapName("billing-dev")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := events.New(env.Config(), events.Options{Namespace: ns, Host: "baton-0"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	synced := agent.SyncRecord{Environment: "billing-dev", Pipeline: "billing", Revision: revA, Result: agent.SyncSucceeded}
	r.SyncDone(synced)
	r.PromotionDone(agent.PromotionRecord{From: "billing-dev", To: "billing-prod", Pipeline: "billing", Revision: revA,
		Outcome: agent.PromotionPushed})
	got := waitEvents(t, ns, 2)
	for _, e := range got {
		if e.Annotations[events.AnnotationPipeline] != "billing" {
			t.Errorf("%s annotations %v: no pipeline", e.Reason, e.Annotations)
		}
	}
	if got[1].Reason != events.ReasonPromoted || !strings.Contains(got[1].Message, "to billing-prod in pipeline billing") {
		t.Errorf("%s: %q", got[1].Reason, got[1].Message)
	}
}
