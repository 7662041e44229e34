package inventory

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeDecodeSmall(t *testing.T) {
	inv := Inventory{Environment: "dev", Revision: "abc123", Entries: []Entry{
		{Version: "v1", Kind: "ConfigMap", Namespace: "b", Name: "x"},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "a", Name: "web"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}, // duplicate
	}}
	data, binary, err := Encode(inv)
	require.NoError(t, err)
	assert.Nil(t, binary, "small inventories stay readable")
	require.Contains(t, data, DataKey)
	assert.Len(t, inv.Entries, 4, "Encode does not modify its argument")

	got, err := Decode("ConfigMap/agent/baton-inventory-dev", data, nil)
	require.NoError(t, err)
	assert.Equal(t, "dev", got.Environment)
	assert.Equal(t, "abc123", got.Revision)
	assert.Equal(t, []Entry{
		{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"},
		{Version: "v1", Kind: "ConfigMap", Namespace: "b", Name: "x"},
		{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "a", Name: "web"},
	}, got.Entries, "sorted by group, kind, namespace, name; duplicates removed")
}

func TestEncodeDecodeLargeIsCompressed(t *testing.T) {
	inv := Inventory{Environment: "prod"}
	for i := range 5000 {
		inv.Entries = append(inv.Entries, Entry{Version: "v1", Kind: "ConfigMap", Namespace: "team-a", Name: fmt.Sprintf("settings-%05d", i)})
	}
	data, binary, err := Encode(inv)
	require.NoError(t, err)
	assert.Nil(t, data)
	require.Contains(t, binary, BinaryDataKey)
	assert.Less(t, len(binary[BinaryDataKey]), 64<<10, "5,000 entries compress far below the ConfigMap limit")

	got, err := Decode("cm", nil, binary)
	require.NoError(t, err)
	assert.Len(t, got.Entries, 5000)
	assert.True(t, SameEntries(inv, got))
}

func TestDecodeErrors(t *testing.T) {
	_, err := Decode("ConfigMap/agent/baton-inventory-dev", map[string]string{}, nil)
	assert.EqualError(t, err, "decode inventory ConfigMap/agent/baton-inventory-dev: neither inventory.json nor inventory.json.gz is set")
	_, err = Decode("cm", map[string]string{DataKey: "{"}, nil)
	assert.ErrorContains(t, err, "decode inventory cm:")
	_, err = Decode("cm", nil, map[string][]byte{BinaryDataKey: []byte("not gzip")})
	assert.ErrorContains(t, err, "decode inventory cm: inventory.json.gz:")
	_, err = Decode("cm", map[string]string{DataKey: `{"version":9,"environment":"dev","entries":[]}`}, nil)
	assert.ErrorContains(t, err, "format version 9, want 1")
}

func TestNormalizeIgnoresVersionForIdentity(t *testing.T) {
	inv := Inventory{Entries: []Entry{
		{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler", Namespace: "a", Name: "web"},
		{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler", Namespace: "a", Name: "web"},
	}}
	inv.Normalize()
	require.Len(t, inv.Entries, 1, "one object applied under two versions is one entry")
}

func TestEntryString(t *testing.T) {
	assert.Equal(t, "ConfigMap/a/x", Entry{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}.String())
	assert.Equal(t, "Namespace/a", Entry{Version: "v1", Kind: "Namespace", Name: "a"}.String())
	assert.Equal(t, "baton-inventory-dev", ConfigMapName("dev"))
}

func TestPendingEntries(t *testing.T) {
	inv := Inventory{Environment: "dev", Revision: "r1",
		Entries: []Entry{{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}},
		Pending: []Entry{
			{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "y"},
			{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "x"}, // applied already
			{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "y"},
		}, PendingRevision: "r2"}
	data, _, err := Encode(inv)
	require.NoError(t, err)
	got, err := Decode("cm", data, nil)
	require.NoError(t, err)
	assert.Equal(t, "r1", got.Revision)
	assert.Equal(t, []Entry{{Version: "v1", Kind: "ConfigMap", Namespace: "a", Name: "y"}}, got.Pending)
	assert.Equal(t, "r2", got.PendingRevision)
	assert.Len(t, got.All(), 2)
	assert.False(t, SameEntries(got, Inventory{Entries: got.Entries}), "pending entries count")

	// Nothing pending: the fields are not written, and the JSON is what
	// agents wrote before they existed.
	data, _, err = Encode(Inventory{Environment: "dev", Revision: "r1", Entries: inv.Entries})
	require.NoError(t, err)
	assert.Equal(t, `{"version":1,"environment":"dev","revision":"r1","entries":[{"v":"v1","k":"ConfigMap","ns":"a","n":"x"}]}`, data[DataKey])
	// An inventory written before pending entries existed reads as one
	// with nothing pending.
	got, err = Decode("cm", map[string]string{DataKey: `{"version":1,"environment":"dev","revision":"r0","entries":[{"v":"v1","k":"ConfigMap","ns":"a","n":"x"}]}`}, nil)
	require.NoError(t, err)
	assert.Empty(t, got.Pending)
	assert.Equal(t, inv.Entries, got.Entries)
}
