package agent

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// JournalConfigMap names the ConfigMap, in the agent's namespace, where the
// agent records the last promotion of each edge it reported as landed.
const JournalConfigMap = "baton-promotions"

// journal is promote.Journal kept in a ConfigMap: one key per edge,
// "<from>.<to>" (environment names are DNS labels, so the dot is free),
// whose value is the target commit of the promotion in effect ("" for
// none). It lives in the cluster, so a promotion merged while no replica
// ran is reported by the next leader, once.
type journal struct {
	cs        kubernetes.Interface
	namespace string
}

func newJournal(cfg *rest.Config, namespace string) (*journal, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("promotion journal client: %w", err)
	}
	return &journal{cs: cs, namespace: namespace}, nil
}

func journalKey(edge string) string { return strings.Replace(edge, "->", ".", 1) }

// Landed reads the edge's record.
func (j *journal) Landed(ctx context.Context, edge string) (string, bool, error) {
	cm, err := j.cs.CoreV1().ConfigMaps(j.namespace).Get(ctx, JournalConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read ConfigMap/%s/%s: %w", j.namespace, JournalConfigMap, err)
	}
	commit, found := cm.Data[journalKey(edge)]
	return commit, found, nil
}

// RecordLanded sets the edge's record, leaving the other edges' (a merge
// patch: other agents in the namespace may write theirs).
func (j *journal) RecordLanded(ctx context.Context, edge, commit string) error {
	cms := j.cs.CoreV1().ConfigMaps(j.namespace)
	patch := fmt.Sprintf(`{"data":{%q:%q}}`, journalKey(edge), commit)
	for range 2 {
		_, err := cms.Patch(ctx, JournalConfigMap, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "baton"})
		if !apierrors.IsNotFound(err) {
			return wrapJournal(j.namespace, err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: JournalConfigMap, Namespace: j.namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "baton"}},
			Data: map[string]string{journalKey(edge): commit}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: "baton"})
		if !apierrors.IsAlreadyExists(err) {
			return wrapJournal(j.namespace, err)
		}
		// Another replica created it first: patch it.
	}
	return wrapJournal(j.namespace, fmt.Errorf("created and deleted concurrently"))
}

func wrapJournal(namespace string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("write ConfigMap/%s/%s: %w", namespace, JournalConfigMap, err)
}
