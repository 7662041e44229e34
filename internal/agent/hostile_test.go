package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
	"github.com/baton-gitops/baton/internal/testenv/hostile"
	"github.com/baton-gitops/baton/reconciler/inventory"
)

// hostileWorld is one agent syncing two environments from one repository:
// "victim" (env/staging, overlays/victim) keeps committing while
// "attacker" (env/dev, overlays/attacker) pushes one attack per commit.
// Both run as ServiceAccounts of their own (lockdown on) and both may write
// a namespace they share, so that ownership, not scope, is what guards the
// victim's Deployment there.
type hostileWorld struct {
	*fixture
	agent                        *running
	victimNS, attackerNS, shared string
	ticks                        int
	memory                       *memorySampler
}

const victimDeployment = "web"

func victimFiles(tick string) map[string]string {
	return map[string]string{
		"overlays/victim/kustomization.yaml": "resources: [settings.yaml, tick.yaml, web.yaml]\n",
		"overlays/victim/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: victim-settings}\ndata: {value: from-git}\n",
		"overlays/victim/tick.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: victim-tick}\ndata: {value: " + tick + "}\n",
	}
}

// attackerFiles is the attacker's good overlay plus extra resources.
func attackerFiles(extra ...string) map[string]string {
	return map[string]string{
		"overlays/attacker/kustomization.yaml": "resources: [" + strings.Join(append([]string{"settings.yaml"}, extra...), ", ") + "]\n",
		"overlays/attacker/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: attacker-settings}\ndata: {value: from-git}\n",
	}
}

func newHostileWorld(t *testing.T) *hostileWorld {
	files := victimFiles("tick-0")
	for p, c := range attackerFiles() {
		files[p] = c
	}
	w := &hostileWorld{victimNS: env.Namespace(t), attackerNS: env.Namespace(t), shared: env.Namespace(t)}
	files["overlays/victim/web.yaml"] = strings.Replace(deployment(victimDeployment, ""), "metadata:\n  name: web\n",
		"metadata:\n  name: web\n  namespace: "+w.shared+"\n", 1)
	w.fixture = newFixture(t, files)

	// What each environment's account may do: its objects in its own
	// namespace and the shared one, and read what health watches. The
	// attacker's account may not write Secrets.
	workload := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"*"}},
		{APIGroups: []string{"", "apps"}, Resources: []string{"pods", "replicasets", "events"}, Verbs: []string{"get", "list", "watch"}},
	}
	for _, e := range []struct{ ns, name string }{{w.victimNS, "victim"}, {w.attackerNS, "attacker"}} {
		_, err := env.Clientset(t).CoreV1().ServiceAccounts(e.ns).Create(t.Context(),
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: e.name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		grant(t, e.ns, e.ns, e.name, workload)
		grant(t, w.shared, e.ns, e.name, workload)
	}

	cfg := w.config(fmt.Sprintf(`
repositories:
  - name: deploy
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 1s
    timeout: 30s
environments:
  - name: attacker
    branch: env/dev
    path: overlays/attacker
    namespace: %s
    scope: {namespaces: [%s, %s]}
    serviceAccount: attacker
    health: {timeout: 30s}
  - name: victim
    branch: env/staging
    path: overlays/victim
    namespace: %s
    scope: {namespaces: [%s, %s]}
    serviceAccount: victim
    health: {timeout: 30s}
sync: [attacker, victim]
agent:
  namespace: %s
  requireServiceAccount: true
limits:
  renderMemory: 64Mi
`, w.srv.HTTPURL("deploy"), w.srv.User, writeFile(t, "token", w.srv.Token), w.attackerNS, w.attackerNS, w.shared,
		w.victimNS, w.victimNS, w.shared, w.agentNS))
	w.memory = startMemorySampler(t)
	w.agent = w.startAgent(cfg, "hostile", nil)
	for e, branch := range map[string]string{"attacker": "env/dev", "victim": "env/staging"} {
		head := w.repo.Head(t, branch)
		eventually(t, 60*time.Second, "the first sync of "+e, func() bool { return w.agent.rec.syncedBy(e, head) })
	}
	return w
}

// grant binds rules in ns to the ServiceAccount saNS/name.
func grant(t *testing.T, ns, saNS, name string, rules []rbacv1.PolicyRule) {
	t.Helper()
	meta := metav1.ObjectMeta{Name: "baton-env-" + name, Namespace: ns}
	cs := env.Clientset(t)
	_, err := cs.RbacV1().Roles(ns).Create(t.Context(), &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = cs.RbacV1().RoleBindings(ns).Create(t.Context(), &rbacv1.RoleBinding{ObjectMeta: meta,
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: meta.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: saNS}}}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// fingerprint is every object of both environments (but the victim's tick,
// which its commits change) and both inventories' entries: what no attack
// may change.
func (w *hostileWorld) fingerprint(t *testing.T) map[string]string {
	t.Helper()
	ctx := t.Context()
	cs := env.Clientset(t)
	out := map[string]string{}
	sel := metav1.ListOptions{LabelSelector: "baton.dev/environment in (victim,attacker)"}
	for _, ns := range []string{w.victimNS, w.attackerNS, w.shared} {
		cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
		require.NoError(t, err)
		for _, c := range cms.Items {
			if c.Name != "victim-tick" {
				out["ConfigMap/"+ns+"/"+c.Name] = digest(c.UID, c.Labels, c.Data)
			}
		}
		ds, err := cs.AppsV1().Deployments(ns).List(ctx, sel)
		require.NoError(t, err)
		for _, d := range ds.Items {
			out["Deployment/"+ns+"/"+d.Name] = digest(d.UID, d.Generation, d.Labels, d.Spec.Template)
		}
	}
	for _, e := range []string{"victim", "attacker"} {
		store := inventory.Store{Client: cs.CoreV1(), Namespace: w.agentNS, FieldManager: "test"}
		inv, _, err := store.Load(ctx, e)
		require.NoError(t, err)
		out["inventory/"+e] = digest(inv.Entries)
	}
	return out
}

func digest(v ...any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// syncedBy reports whether env recorded a successful sync of commit.
func (c *countingRecorder) syncedBy(envName, commit string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.syncs {
		if s.Environment == envName && s.Revision == commit && s.Result == SyncSucceeded {
			return true
		}
	}
	return false
}

// failedSync returns the recorded failed sync of commit by env, if any.
func (c *countingRecorder) failedSync(envName, commit string) (SyncRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.syncs {
		if s.Environment == envName && s.Revision == commit && s.Result == SyncFailed {
			return s, true
		}
	}
	return SyncRecord{}, false
}

// attackOutcome is one row of the attack table.
type attackOutcome struct {
	attack, rule, message string
	heapPeak, rssPeak     uint64
}

// TestHostileRepository pushes one attack per commit to the attacker's
// branch while the victim keeps committing, on one agent. Each attack must
// be refused (or denied by RBAC) with a message naming what and why; no
// object of either environment may change; the victim must sync a new
// commit during the attack; the agent must stay ready. The memory of the
// agent's process is sampled throughout; the bombs must not move it.
func TestHostileRepository(t *testing.T) {
	w := newHostileWorld(t)
	web := "Deployment/" + w.shared + "/" + victimDeployment
	bombs := map[string]bool{}
	var table []attackOutcome
	run := func(name, rule string, change gitserver.Change, want []string, absent func() bool) {
		t.Helper()
		ok := t.Run(name, func(t *testing.T) {
			before := w.fingerprint(t)
			runtime.GC()
			w.memory.mark()
			commit := w.repo.Commit(t, "env/dev", change)
			w.ticks++
			tick := "tick-" + strconv.Itoa(w.ticks)
			victimCommit := w.repo.Commit(t, "env/staging", gitserver.Change{Write: victimFiles(tick), Message: "victim " + tick})

			var rec SyncRecord
			eventually(t, 90*time.Second, "the attack refused and the victim's commit synced", func() bool {
				var failed bool
				rec, failed = w.agent.rec.failedSync("attacker", commit)
				return failed && w.agent.rec.syncedBy("victim", victimCommit)
			})
			heap, rss := w.memory.peak()
			table = append(table, attackOutcome{attack: name, rule: rec.Refused, message: rec.Error, heapPeak: heap, rssPeak: rss})
			assert.Equal(t, rule, rec.Refused, "the rule or limit that refused it")
			for _, s := range want {
				assert.Contains(t, rec.Error, s)
			}
			assert.Equal(t, before, w.fingerprint(t), "no object of either environment changed or deleted")
			assert.Equal(t, tick, configMapValue(t, w.victimNS, "victim-tick"), "the victim synced during the attack")
			if absent != nil {
				assert.True(t, absent(), "the attack's object does not exist")
			}
			code, body := httpCode(t, w.agent.addr+PathReadyz)
			assert.Equal(t, http.StatusOK, code, "readyz: %s", body)
		})
		if !ok {
			t.FailNow()
		}
	}
	resources := func(files map[string]string, extra ...string) gitserver.Change {
		all := attackerFiles(extra...)
		for p, c := range files {
			all["overlays/attacker/"+p] = c
		}
		return gitserver.Change{Write: all, Message: "attack"}
	}
	missing := func(get func() error) func() bool {
		return func() bool { return apierrors.IsNotFound(get()) }
	}
	cs := env.Clientset(t)
	ctx := t.Context()

	run("object in another namespace", "namespace",
		resources(map[string]string{"x.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted, namespace: " + w.victimNS + "}\n"}, "x.yaml"),
		[]string{"ConfigMap/" + w.victimNS + "/planted (from overlays/attacker/x.yaml:1): namespace \"" + w.victimNS + "\" is not in the environment's scope (scope.namespaces [" + w.attackerNS + ", " + w.shared + "])"},
		missing(func() error {
			_, err := cs.CoreV1().ConfigMaps(w.victimNS).Get(ctx, "planted", metav1.GetOptions{})
			return err
		}))

	run("cluster-scoped object", "cluster-kind",
		resources(map[string]string{"ns.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: planted-" + w.attackerNS + "}\n"}, "ns.yaml"),
		[]string{"Namespace/planted-" + w.attackerNS + " (from overlays/attacker/ns.yaml:1): cluster-scoped kind Namespace is not in the environment's scope (scope.clusterKinds is empty)"},
		missing(func() error {
			_, err := cs.CoreV1().Namespaces().Get(ctx, "planted-"+w.attackerNS, metav1.GetOptions{})
			return err
		}))

	crb := "pwn-" + w.attackerNS
	run("ClusterRoleBinding to cluster-admin", "cluster-kind",
		resources(map[string]string{"crb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: " + crb + "}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n" +
			"subjects: [{kind: ServiceAccount, name: attacker, namespace: " + w.attackerNS + "}]\n"}, "crb.yaml"),
		[]string{"ClusterRoleBinding/" + crb + " (from overlays/attacker/crb.yaml:1): cluster-scoped kind ClusterRoleBinding.rbac.authorization.k8s.io is not in the environment's scope"},
		missing(func() error {
			_, err := cs.RbacV1().ClusterRoleBindings().Get(ctx, crb, metav1.GetOptions{})
			return err
		}))

	run("object in Baton's namespace", "protected",
		resources(map[string]string{"inv.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + inventory.ConfigMapName("victim") + ", namespace: " + w.agentNS + "}\ndata: {inventory.json: '{}'}\n"}, "inv.yaml"),
		[]string{"ConfigMap/" + w.agentNS + "/baton-inventory-victim (from overlays/attacker/inv.yaml:1): namespace \"" + w.agentNS + "\" is the agent's own (its configuration, inventories and Lease): no environment may write it"},
		nil)

	takeover := strings.Replace(deployment(victimDeployment, ""), "metadata:\n  name: web\n", "metadata:\n  name: web\n  namespace: "+w.shared+"\n", 1)
	takeover = strings.Replace(takeover, "registry.example/web:1", "registry.example/evil:1", 1)
	run("taking over the victim's Deployment", "ownership",
		resources(map[string]string{"web.yaml": takeover}, "web.yaml"),
		[]string{web + " (from overlays/attacker/web.yaml:1): it belongs to environment \"victim\" (label baton.dev/environment=victim); environment \"attacker\" never takes over another environment's object"},
		nil)
	t.Run("then dropping it from git", func(t *testing.T) {
		before := w.fingerprint(t)
		commit := w.repo.Commit(t, "env/dev", gitserver.Change{Write: attackerFiles(), Message: "drop web"})
		eventually(t, 60*time.Second, "the attacker's good overlay synced", func() bool { return w.agent.rec.syncedBy("attacker", commit) })
		assert.Equal(t, before, w.fingerprint(t), "nothing pruned: the attacker never owned the Deployment")
		d, err := cs.AppsV1().Deployments(w.shared).Get(ctx, victimDeployment, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "victim", d.Labels["baton.dev/environment"])
		assert.Equal(t, "registry.example/web:1", d.Spec.Template.Spec.Containers[0].Image)
	})

	run("Secret the account may not write (RBAC, impersonated)", "",
		resources(map[string]string{"secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\nstringData: {k: v}\n"}, "secret.yaml"),
		[]string{`Secret/` + w.attackerNS + `/stolen: permission denied: ServiceAccount ` + w.attackerNS + `/attacker cannot get secrets in namespace "` + w.attackerNS + `"`},
		missing(func() error {
			_, err := cs.CoreV1().Secrets(w.attackerNS).Get(ctx, "stolen", metav1.GetOptions{})
			return err
		}))

	bombs["alias bomb"] = true
	run("alias bomb", "aliases",
		resources(map[string]string{"bomb.yaml": hostile.AliasBomb("bomb", 9)}, "bomb.yaml"),
		[]string{"overlays/attacker/bomb.yaml: its aliases expand to more than 10000 YAML nodes: over the YAML alias expansion limit of 10000 nodes (limits.maxAliasNodes)"},
		nil)

	bombs["oversized blob"] = true
	big := resources(nil, "big.yaml")
	big.Large = map[string]int64{"overlays/attacker/big.yaml": 9 << 20}
	run("oversized blob", "file-size", big,
		[]string{"overlays/attacker/big.yaml: the file is 9.0 MiB: over the file size limit of 8.0 MiB (limits.maxFileSize)"},
		nil)

	// Over limits.maxBlobSize, the fetch refuses the pack before go-git
	// inflates it: the attacker's branch keeps its last good revision, the
	// victim's branch of the same repository moves on.
	bombs["huge blob (fetch)"] = true
	t.Run("huge blob (fetch)", func(t *testing.T) {
		before := w.fingerprint(t)
		runtime.GC()
		w.memory.mark()
		change := resources(nil, "huge.yaml")
		change.Large = map[string]int64{"overlays/attacker/huge.yaml": 128 << 20}
		commit := w.repo.Commit(t, "env/dev", change)
		w.ticks++
		tick := "tick-" + strconv.Itoa(w.ticks)
		victimCommit := w.repo.Commit(t, "env/staging", gitserver.Change{Write: victimFiles(tick), Message: "victim " + tick})
		var sourceErr string
		eventually(t, 90*time.Second, "the attacker's fetch refused and the victim's commit synced", func() bool {
			for _, e := range w.agent.agent.Status().Environments {
				if e.Name == "attacker" {
					sourceErr = e.SourceError
				}
			}
			return strings.Contains(sourceErr, "object too large") && w.agent.rec.syncedBy("victim", victimCommit)
		})
		heap, rss := w.memory.peak()
		table = append(table, attackOutcome{attack: "huge blob (fetch)", rule: "too_large (source)", message: sourceErr, heapPeak: heap, rssPeak: rss})
		assert.Contains(t, sourceErr, "@env/dev: object too large: the fetched pack holds a blob ")
		assert.Contains(t, sourceErr, " of 128.0 MiB: over the limit of 16.0 MiB on one object (limits.maxBlobSize); nothing was stored (its path: git log --all --find-object=")
		assert.False(t, w.agent.rec.syncedBy("attacker", commit), "the attacker's commit was never applied")
		_, failed := w.agent.rec.failedSync("attacker", commit)
		assert.False(t, failed, "never even fetched")
		assert.Equal(t, before, w.fingerprint(t), "no object of either environment changed or deleted")
		assert.Equal(t, tick, configMapValue(t, w.victimNS, "victim-tick"), "the victim synced during the attack")
		code, body := httpCode(t, w.agent.addr+PathReadyz)
		assert.Equal(t, http.StatusOK, code, "readyz: %s", body)

		// A commit that removes the blob is fetched and synced.
		fixed := w.repo.Commit(t, "env/dev", gitserver.Change{Write: attackerFiles(), Delete: []string{"overlays/attacker/huge.yaml"}, Message: "remove the blob"})
		eventually(t, 60*time.Second, "the attacker's fixed branch synced", func() bool { return w.agent.rec.syncedBy("attacker", fixed) })
	})

	bombs["exponential kustomization fan-out"] = true
	run("exponential kustomization fan-out", "objects",
		resources(hostile.FanOut("fan", 30), "fan"),
		[]string{"overlays/attacker/kustomization.yaml: the kustomizations it reaches would render at least 1073741825 objects", "over the object count limit of 10000 objects (limits.maxObjects)"},
		nil)

	bombs["aliases under the limit in many files (render memory)"] = true
	run("aliases under the limit in many files (render memory)", "memory",
		resources(hostile.ManyAliases("many", 24), "many"),
		[]string{"overlays/attacker: the build's memory grew past it and the build was stopped: over the render memory limit of 64.0 MiB (limits.renderMemory)"},
		nil)

	var before, during attackOutcome
	for _, row := range table {
		t.Logf("attack %-40s -> refused by %-12q (agent heap peak %d MiB, RSS %d MiB) %s", row.attack, row.rule, row.heapPeak>>20, row.rssPeak>>20, row.message)
		peak := &before
		if bombs[row.attack] {
			peak = &during
		}
		peak.heapPeak, peak.rssPeak = max(peak.heapPeak, row.heapPeak), max(peak.rssPeak, row.rssPeak)
	}
	t.Logf("agent process peak during the bombs: heap %d MiB, RSS %d MiB; during the other attacks: heap %d MiB, RSS %d MiB; render workers together: anonymous RSS %d MiB at most (GOARCH %s, race %v)",
		during.heapPeak>>20, during.rssPeak>>20, before.heapPeak>>20, before.rssPeak>>20, w.memory.workerPeakEver()>>20, runtime.GOARCH, raceEnabled)
	// What remains is go-git holding a blob it accepted (under
	// limits.maxBlobSize, 16 MiB) five or six times over while it indexes
	// or compacts; unguarded, the alias bomb alone makes Kustomize allocate
	// ~1 GiB at 5 levels and 9 times that per level more, the 128 MiB blob
	// costs go-git over 600 MiB, and the fan-out never finishes.
	assert.Less(t, during.heapPeak, before.heapPeak+8*16<<20, "the bombs move the agent's heap by less than 8 × maxBlobSize")
}

// memorySampler records this process's peak Go heap and resident memory,
// and the peak resident memory of its render workers together, since the
// last mark, every 10 ms, for the length of the test.
type memorySampler struct {
	mu        sync.Mutex // guards the peaks
	heap, rss uint64
	// workersEver is the workers' peak over the whole test (mark keeps it).
	workersEver uint64
}

func startMemorySampler(t *testing.T) *memorySampler {
	m := &memorySampler{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			heap, rss, workers := sample[0].Value.Uint64(), procStatus("self", "VmRSS"), workerBytes()
			m.mu.Lock()
			m.heap, m.rss = max(m.heap, heap), max(m.rss, rss)
			m.workersEver = max(m.workersEver, workers)
			m.mu.Unlock()
		}
	}()
	return m
}

// mark starts a new measurement.
func (m *memorySampler) mark() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heap, m.rss = 0, 0
}

func (m *memorySampler) peak() (heap, rss uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heap, m.rss
}

func (m *memorySampler) workerPeakEver() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.workersEver
}

// workerBytes sums the anonymous resident memory of this process's render
// workers (its children started with render.WorkerEnv): their own memory,
// not the pages of the binary they share with the agent.
func workerBytes() uint64 {
	tasks, _ := os.ReadDir("/proc/self/task")
	var total uint64
	for _, task := range tasks {
		children, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		for _, pid := range strings.Fields(string(children)) {
			environ, _ := os.ReadFile("/proc/" + pid + "/environ")
			if strings.Contains(string(environ), "BATON_RENDER_WORKER=1\x00") {
				total += procStatus(pid, "RssAnon")
			}
		}
	}
	return total
}

// procStatus reads a memory field (VmRSS, RssAnon) of /proc/<pid>/status;
// 0 where there is none.
func procStatus(pid, field string) uint64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
