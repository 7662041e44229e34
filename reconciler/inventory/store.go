package inventory

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// NamePrefix starts the name of every inventory ConfigMap.
const NamePrefix = "baton-inventory-"

// LabelInventoryOf marks an inventory ConfigMap with its environment. It is
// deliberately not baton.dev/environment: the inventory is not one of the
// environment's objects and must never be pruned with them.
const LabelInventoryOf = "baton.dev/inventory-of"

// ConfigMapName is the name of the ConfigMap holding env's inventory.
func ConfigMapName(env string) string { return NamePrefix + env }

// Store reads and writes inventories as ConfigMaps in one namespace.
type Store struct {
	// Client reaches the ConfigMaps. Required.
	Client corev1client.ConfigMapsGetter
	// Namespace holds the ConfigMaps: the agent's namespace. Required.
	Namespace string
	// FieldManager is the server-side apply field manager for writes.
	// Required.
	FieldManager string
	// Writer, when set, is recorded on every write (AnnotationWriter): the
	// replica that wrote.
	Writer string
}

// AnnotationWriter names the agent replica that last wrote an inventory.
const AnnotationWriter = "baton.dev/written-by"

// Load reads env's inventory. A missing ConfigMap is not an error: it
// returns an empty inventory and found == false (a first pass).
func (s *Store) Load(ctx context.Context, env string) (inv Inventory, found bool, err error) {
	name := ConfigMapName(env)
	cm, err := s.Client.ConfigMaps(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Inventory{Environment: env}, false, nil
	}
	if err != nil {
		return Inventory{}, false, fmt.Errorf("read inventory ConfigMap/%s/%s: %w", s.Namespace, name, err)
	}
	inv, err = Decode("ConfigMap/"+s.Namespace+"/"+name, cm.Data, cm.BinaryData)
	if err != nil {
		return Inventory{}, false, err
	}
	if inv.Environment != env {
		return Inventory{}, false, fmt.Errorf("read inventory ConfigMap/%s/%s: it belongs to environment %q, not %q", s.Namespace, name, inv.Environment, env)
	}
	return inv, true, nil
}

// Save writes inv with server-side apply, replacing the previous inventory
// (switching between the plain and compressed forms removes the other key,
// because the field manager owned it).
func (s *Store) Save(ctx context.Context, inv Inventory) error {
	name := ConfigMapName(inv.Environment)
	data, binary, err := Encode(inv)
	if err != nil {
		return err
	}
	ac := corev1ac.ConfigMap(name, s.Namespace).
		WithLabels(map[string]string{
			"app.kubernetes.io/managed-by": "baton",
			LabelInventoryOf:               inv.Environment,
		})
	if s.Writer != "" {
		ac.WithAnnotations(map[string]string{AnnotationWriter: s.Writer})
	}
	if data != nil {
		ac.WithData(data)
	}
	if binary != nil {
		ac.WithBinaryData(binary)
	}
	_, err = s.Client.ConfigMaps(s.Namespace).Apply(ctx, ac, metav1.ApplyOptions{FieldManager: s.FieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("write inventory ConfigMap/%s/%s: %w", s.Namespace, name, err)
	}
	return nil
}
