package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/envobject"
	"github.com/baton-gitops/baton/internal/testenv"
)

// Two real clusters, as on call: dev's agent in one, prod's in the other,
// one kubeconfig with a context for each (different clusters, users and
// namespaces). --context picks the cluster and the user of its context
// (the suspension lands in prod's cluster, recorded as prod's user), the
// current context is used without it, and baton status shows the whole
// pipeline: dev from the current cluster, prod from the peer context.
func TestContextPicksTheClusterAndStatusShowsPeers(t *testing.T) {
	ctx := t.Context()
	start, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	prodCluster, err := testenv.Start(start, testenv.Options{Progress: io.Discard})
	require.NoError(t, err)
	t.Cleanup(prodCluster.Stop)
	prodApp, prodAgent := prodCluster.Namespace(t), prodCluster.Namespace(t)

	w := newWorld(t)
	w.writeConfig("  - name: prod\n    branch: env/prod\n    path: base\n    namespace: "+prodApp+"\n",
		"pipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: auto}]\n  author: {name: CI Bot, email: ci@example.com}\n"+
			"peers:\n  - {name: prod-cluster, context: prod, namespace: "+prodAgent+"}\n")

	// prod's on-call user: a ServiceAccount of prod's cluster that may
	// operate Environment objects, nothing else.
	oncall := prodCluster.RestrictedConfig(t, prodAgent,
		rbacv1.PolicyRule{APIGroups: []string{envobject.Group}, Resources: []string{envobject.Resource}, Verbs: []string{"get", "list", "watch", "patch"}},
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "list"}})
	devCfg, err := clientcmd.LoadFromFile(env.KubeconfigPath())
	require.NoError(t, err)
	prodCfg, err := clientcmd.LoadFromFile(prodCluster.KubeconfigPath())
	require.NoError(t, err)
	devCtx, prodCtx := devCfg.Contexts[devCfg.CurrentContext], prodCfg.Contexts[prodCfg.CurrentContext]
	two := clientcmdapi.NewConfig()
	two.Clusters["dev-cluster"] = devCfg.Clusters[devCtx.Cluster]
	two.Clusters["prod-cluster"] = prodCfg.Clusters[prodCtx.Cluster]
	two.AuthInfos["dev-admin"] = devCfg.AuthInfos[devCtx.AuthInfo]
	two.AuthInfos["prod-oncall"] = &clientcmdapi.AuthInfo{Token: oncall.BearerToken}
	two.Contexts["dev"] = &clientcmdapi.Context{Cluster: "dev-cluster", AuthInfo: "dev-admin"}
	two.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod-cluster", AuthInfo: "prod-oncall", Namespace: prodApp}
	two.CurrentContext = "dev"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*two, kubeconfig))

	w.startAgentOn(envConfig(), "dev-agent", nil, nil)
	prod := w.startAgentOn(prodCluster.Config(), "prod-agent", nil, func(c *config.Config) {
		c.Sync, c.Agent.Namespace = []string{"prod"}, prodAgent
	})
	wait, cancelWait := context.WithTimeout(ctx, 90*time.Second)
	defer cancelWait()
	_, err = w.waitReady(wait, "dev")
	require.NoError(t, err)
	prodObjects := envobject.NewClient(dynamic.NewForConfigOrDie(prodCluster.Config()), prodAgent)
	eventually(t, 60*time.Second, "prod's agent to report prod ready", func() bool {
		e, err := prodObjects.Get(ctx, "prod")
		return err == nil && envobject.Ready(e)
	})

	// The whole pipeline from the current context (dev) and the peer.
	code, out, errOut := w.baton("status", "--kubeconfig", kubeconfig, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var st pipelineStatus
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Len(t, st.Environments, 2)
	require.Equal(t, "dev", st.Environments[0].Name)
	require.Equal(t, "cluster dev/"+w.agentNS, st.Environments[0].ReportedBy)
	require.Equal(t, "prod", st.Environments[1].Name)
	require.Equal(t, "peer prod-cluster", st.Environments[1].ReportedBy)
	require.Equal(t, "Healthy", st.Environments[1].Health.Status)
	require.Empty(t, st.Problems)

	// Without --context, prod is not in the current cluster.
	code, _, errOut = w.baton("suspend", "--kubeconfig", kubeconfig, "--env", "prod", "--reason", "INC-9", "--wait", "0")
	require.Equal(t, 1, code)
	require.Equal(t, "baton suspend: no Environment \"prod\" in namespace "+w.agentNS+": no agent syncs it there (see --namespace)\n", errOut)

	// With it: prod's cluster, as prod's on-call user.
	code, out, errOut = w.baton("suspend", "--kubeconfig", kubeconfig, "--context", "prod", "--namespace", prodAgent, "--env", "prod", "--reason", "INC-9")
	require.Equal(t, 0, code, errOut)
	user := "system:serviceaccount:" + prodAgent + ":"
	require.Regexp(t, `^prod suspended by `+user+`restricted-[0-9a-f]+: INC-9 \(acknowledged by prod-agent\)\n$`, out)
	e, err := prodObjects.Get(ctx, "prod")
	require.NoError(t, err)
	require.True(t, e.Spec.Suspend)
	require.Contains(t, e.Status.Suspended.By, user)

	code, out, errOut = w.baton("status", "--kubeconfig", kubeconfig)
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, `(?m)^prod suspended by `+user+`restricted-[0-9a-f]+: INC-9 \(\d+s ago\)$`, out)

	// A peer by URL: prod's agent's /api/status.
	w.writeConfig("  - name: prod\n    branch: env/prod\n    path: base\n    namespace: "+prodApp+"\n",
		"pipeline:\n  order: [dev, prod]\n  edges: [{from: dev, to: prod, policy: auto}]\n  author: {name: CI Bot, email: ci@example.com}\n"+
			"peers:\n  - {name: prod-http, url: '"+prod.url+"'}\n")
	code, out, errOut = w.baton("status", "--kubeconfig", kubeconfig, "-o", "json")
	require.Equal(t, 0, code, errOut)
	st = pipelineStatus{}
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "peer prod-http", st.Environments[1].ReportedBy)
	require.Equal(t, "leader", st.Environments[1].Role)
	require.True(t, st.Environments[1].Suspended)
	_ = os.Remove(kubeconfig)
}
