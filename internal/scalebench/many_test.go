package scalebench

import (
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// manyEnvironments is Flux's benchmark shape: a thousand small
// applications from one repository (-environments to try another count).
var manyEnvironments = 1000

// extraAgent is added to the agent's settings (-agent, for trying them).
var extraAgent string

func init() {
	flag.IntVar(&manyEnvironments, "environments", manyEnvironments, "environments of BenchmarkManySmallEnvironments")
	flag.StringVar(&extraAgent, "agent", "", "agent settings added to baton.yaml's agent: (YAML lines, indented)")
}

// base is one small application: a Deployment (one replica), its Service,
// ConfigMap and ServiceAccount.
var base = map[string]string{
	"base/kustomization.yaml": "resources: [deployment.yaml, service.yaml, configmap.yaml, serviceaccount.yaml]\n",
	"base/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {component: web}
  template:
    metadata:
      labels: {component: web}
    spec:
      serviceAccountName: app
      containers:
        - name: web
          image: registry.example/app:1.0.0
          ports: [{containerPort: 8080}]
          envFrom: [{configMapRef: {name: app-config}}]
          resources: {requests: {cpu: 10m, memory: 16Mi}}
`,
	"base/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: app
spec:
  selector: {component: web}
  ports: [{port: 80, targetPort: 8080}]
`,
	"base/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  GREETING: hello
  LOG_LEVEL: info
`,
	"base/serviceaccount.yaml": `apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
`,
}

// manyFiles is the repository: the base and one overlay per application,
// which names its objects and selects its pods apart.
func manyFiles(n int) map[string]string {
	files := map[string]string{}
	for k, v := range base {
		files[k] = v
	}
	for i := range n {
		name := fmt.Sprintf("app-%04d", i)
		files["apps/"+name+"/kustomization.yaml"] = fmt.Sprintf(`resources: [../../base]
namePrefix: %s-
labels:
  - pairs: {app: %s}
    includeSelectors: true
`, name, name)
	}
	return files
}

// manyConfigNS is baton.yaml for n environments, the i-th applied into
// namespaces[i].
func manyConfigNS(repoURL, user, tokenFile string, namespaces []string, agentNS string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `repositories:
  - name: apps
    url: %s
    auth: {username: %s, tokenFile: %s}
    interval: 10m
environments:
`, repoURL, user, tokenFile)
	var names []string
	for i := range n {
		name := fmt.Sprintf("app-%04d", i)
		names = append(names, name)
		fmt.Fprintf(&b, "  - {name: %s, branch: env/dev, path: apps/%s, namespace: %s}\n", name, name, namespaces[i])
	}
	fmt.Fprintf(&b, "sync: [%s]\nagent:\n  namespace: %s\n  leaderElection: {enabled: false}\n%s", strings.Join(names, ", "), agentNS, extraAgent)
	return b.String()
}

// BenchmarkManySmallEnvironments: a thousand environments of four objects
// each (Deployment, Service, ConfigMap, ServiceAccount) from one
// repository, applied by one agent (a child process) from its start until
// every environment is synced and healthy: the wall time, the agent's
// peak resident memory and its CPU seconds. Flux's published figures for
// the same shape: 4m13s and 223 MiB on 2 CPUs. Run with:
//
//	go test -run '^$' -bench ManySmallEnvironments -benchtime 1x -timeout 30m ./internal/scalebench/
func BenchmarkManySmallEnvironments(b *testing.B) {
	srv := gitserver.Start(b, gitserver.Options{})
	srv.CreateRepo(b, "apps", manyFiles(manyEnvironments))
	token := writeFile(b, "token", srv.Token)
	for range b.N {
		// A namespace per environment, as teams usually have: the health
		// watches of an environment follow the pods of its namespace.
		agentNS := env.Namespace(b)
		namespaces := make([]string, manyEnvironments)
		for i := range namespaces {
			namespaces[i] = env.Namespace(b)
		}
		p := startAgent(b, manyConfigNS(srv.HTTPURL("apps"), srv.User, token, namespaces, agentNS, manyEnvironments))
		synced := time.Duration(0)
		p.waitFor(20*time.Minute, 2*time.Second, "every environment synced and healthy", func(st agent.Status) (bool, string) {
			nSynced, nHealthy := 0, 0
			for _, e := range st.Environments {
				if e.LastSync != nil && e.LastSync.Result == agent.SyncSucceeded {
					nSynced++
				}
				if e.Health.Status == "Healthy" {
					nHealthy++
				}
			}
			if nSynced == manyEnvironments && synced == 0 {
				synced = time.Since(p.started)
			}
			return nHealthy == manyEnvironments && nSynced == manyEnvironments,
				fmt.Sprintf("%d synced, %d healthy after %s", nSynced, nHealthy, time.Since(p.started).Round(time.Second))
		})
		elapsed := time.Since(p.started)
		u := p.usage()
		b.Logf("all %d environments synced after %.1fs", manyEnvironments, synced.Seconds())
		report(b, fmt.Sprintf("%d environments × 4 objects synced and healthy", manyEnvironments), elapsed, u)
		b.ReportMetric(elapsed.Seconds(), "s-to-healthy")
		b.ReportMetric(synced.Seconds(), "s-to-synced")
		b.ReportMetric(u.peakRSS, "MiB-peak-RSS")
		b.ReportMetric(u.cpu.Seconds(), "CPU-s")
		b.ReportMetric(u.peakRSSAll, "MiB-peak-RSS-with-workers")
		b.ReportMetric(u.cpuAll.Seconds(), "CPU-s-with-workers")
		p.stop()
	}
}
