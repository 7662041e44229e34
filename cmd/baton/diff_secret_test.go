package main

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// A Secret created with `kubectl apply` carries its whole content in the
// last-applied-configuration annotation: baton diff shows neither the
// values nor that annotation, in any output format.
func TestDiffNeverShowsASecretsValues(t *testing.T) {
	w := newWorld(t)
	cs, err := kubernetes.NewForConfig(envConfig())
	require.NoError(t, err)
	const old, next = "hunter2-live", "correct-horse-git"
	applied := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"` + w.appNS +
		`"},"stringData":{"password":"` + old + `"}}`
	_, err = cs.CoreV1().Secrets(w.appNS).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: w.appNS,
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": applied}},
		StringData: map[string]string{"password": old},
	}, metav1.CreateOptions{FieldManager: "kubectl-client-side-apply"})
	require.NoError(t, err)
	w.repo.Commit(t, "env/dev", gitserver.Change{Write: map[string]string{
		"base/kustomization.yaml": "resources:\n  - settings.yaml\n  - web.yaml\n  - secret.yaml\n",
		"base/secret.yaml":        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: " + next + "\n",
	}})

	leaks := []string{old, next, base64.StdEncoding.EncodeToString([]byte(old)),
		base64.StdEncoding.EncodeToString([]byte(next)), `"password"`}
	for _, format := range []string{"diff", "json", "yaml"} {
		code, out, errOut := w.baton("diff", "--env", "dev", "-o", format)
		require.Equal(t, 1, code, errOut)
		require.Contains(t, out, "Secret/"+w.appNS+"/db", "-o %s", format)
		for _, leak := range leaks {
			require.NotContains(t, out, leak, "-o %s shows a secret:\n%s", format, out)
		}
	}
}
