// Package inventory records which objects an environment applied, so that a
// later pass — possibly in a new process — can prune the ones that left git.
//
// An inventory lives in a ConfigMap named baton-inventory-<environment> in the
// agent's namespace. Small inventories are stored as JSON under
// "inventory.json"; large ones gzip-compressed under binaryData
// "inventory.json.gz" (a ConfigMap holds at most 1 MiB).
//
// It is written ahead, so that a crash at any point leaves nothing
// unrecorded: before a pass applies objects the inventory does not hold, it
// records them as Pending (they may exist from then on); after the pass
// succeeds it holds exactly what was applied, with nothing pending. A pass
// that fails, or a process killed mid-apply, leaves the pending entries, and
// a later pass prunes those that are no longer in git.
//
// Format: version 1, a JSON object {"version", "environment", "revision",
// "entries"} as before, plus two optional fields, "pending" and
// "pendingRevision", written only while a pass is unfinished. An inventory
// written before they existed reads as one with nothing pending; an older
// agent reading a newer inventory ignores them (it then does not prune what
// an unfinished pass created: the behaviour it always had).
package inventory

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Entry identifies one applied object. Version is the version it was applied
// with, kept so that it can be deleted even if discovery prefers another.
type Entry struct {
	Group     string `json:"g,omitempty"`
	Version   string `json:"v"`
	Kind      string `json:"k"`
	Namespace string `json:"ns,omitempty"`
	Name      string `json:"n"`
}

// String formats the entry as Kind/namespace/name (Kind/name when cluster-scoped).
func (e Entry) String() string {
	if e.Namespace == "" {
		return e.Kind + "/" + e.Name
	}
	return e.Kind + "/" + e.Namespace + "/" + e.Name
}

// Inventory is the set of objects applied for one environment.
type Inventory struct {
	Environment string `json:"environment"`
	// Revision is the git revision of the last pass that completed.
	Revision string `json:"revision,omitempty"`
	// Entries are the objects the last completed pass applied (and those
	// it left in place that still await deletion). They are sorted and free
	// of duplicates once normalized.
	Entries []Entry `json:"entries"`
	// Pending are objects a pass began to apply and did not complete: each
	// may or may not exist. Never in Entries too, once normalized.
	Pending []Entry `json:"pending,omitempty"`
	// PendingRevision is the revision of the unfinished pass that wrote
	// Pending.
	PendingRevision string `json:"pendingRevision,omitempty"`
}

// Keys of the stored forms inside the ConfigMap.
const (
	DataKey       = "inventory.json"
	BinaryDataKey = "inventory.json.gz"
	// compressAbove is the JSON size from which the inventory is compressed.
	// Uncompressed JSON stays readable with kubectl for the common case.
	compressAbove = 64 << 10
	formatVersion = 1
)

// stored is the serialized form; the version lets the format evolve.
type stored struct {
	Version int `json:"version"`
	Inventory
}

// Normalize sorts the entries by group, kind, namespace and name and removes
// duplicates (same group, kind, namespace and name, whatever the version),
// in Entries and in Pending; an object in Entries is not also pending.
func (inv *Inventory) Normalize() {
	inv.Entries = normalized(inv.Entries)
	inv.Pending = normalized(inv.Pending)
	if len(inv.Pending) > 0 {
		known := make(map[Entry]bool, len(inv.Entries))
		for _, e := range inv.Entries {
			known[e.identity()] = true
		}
		inv.Pending = slices.DeleteFunc(inv.Pending, func(e Entry) bool { return known[e.identity()] })
	}
	if len(inv.Pending) == 0 {
		inv.Pending, inv.PendingRevision = nil, ""
	}
}

func normalized(entries []Entry) []Entry {
	slices.SortFunc(entries, compareEntries)
	return slices.CompactFunc(entries, func(a, b Entry) bool { return a.identity() == b.identity() })
}

// identity is the entry without its version: one object applied under two
// versions is one object.
func (e Entry) identity() Entry {
	e.Version = ""
	return e
}

// All returns the entries and the pending entries together, normalized:
// every object the environment may have applied.
func (inv Inventory) All() []Entry {
	return normalized(append(slices.Clone(inv.Entries), inv.Pending...))
}

func compareEntries(a, b Entry) int {
	return cmp.Or(
		cmp.Compare(a.Group, b.Group),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
	)
}

// SameEntries reports whether two inventories hold the same objects at the
// same versions, applied and pending; the revisions are not compared.
func SameEntries(a, b Inventory) bool {
	return slices.Equal(a.Entries, b.Entries) && slices.Equal(a.Pending, b.Pending)
}

// Encode serializes a normalized copy of inv. Exactly one of data and binary
// is non-nil: binary when the JSON is large.
func Encode(inv Inventory) (data map[string]string, binary map[string][]byte, err error) {
	inv.Entries, inv.Pending = slices.Clone(inv.Entries), slices.Clone(inv.Pending)
	inv.Normalize()
	raw, err := json.Marshal(stored{Version: formatVersion, Inventory: inv})
	if err != nil {
		return nil, nil, fmt.Errorf("encode inventory of %s: %w", inv.Environment, err)
	}
	if len(raw) <= compressAbove {
		return map[string]string{DataKey: string(raw)}, nil, nil
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		return nil, nil, fmt.Errorf("compress inventory of %s: %w", inv.Environment, err)
	}
	if err := zw.Close(); err != nil {
		return nil, nil, fmt.Errorf("compress inventory of %s: %w", inv.Environment, err)
	}
	return nil, map[string][]byte{BinaryDataKey: buf.Bytes()}, nil
}

// Decode reads an inventory from a ConfigMap's data and binaryData; name is
// the ConfigMap's name, used in errors.
func Decode(name string, data map[string]string, binary map[string][]byte) (Inventory, error) {
	var raw []byte
	switch {
	case binary[BinaryDataKey] != nil:
		zr, err := gzip.NewReader(bytes.NewReader(binary[BinaryDataKey]))
		if err != nil {
			return Inventory{}, fmt.Errorf("decode inventory %s: %s: %w", name, BinaryDataKey, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return Inventory{}, fmt.Errorf("decode inventory %s: %s: %w", name, BinaryDataKey, err)
		}
	case data[DataKey] != "":
		raw = []byte(data[DataKey])
	default:
		return Inventory{}, fmt.Errorf("decode inventory %s: neither %s nor %s is set", name, DataKey, BinaryDataKey)
	}
	var s stored
	if err := json.Unmarshal(raw, &s); err != nil {
		return Inventory{}, fmt.Errorf("decode inventory %s: %w", name, err)
	}
	if s.Version != formatVersion {
		return Inventory{}, fmt.Errorf("decode inventory %s: format version %d, want %d", name, s.Version, formatVersion)
	}
	s.Inventory.Normalize()
	return s.Inventory, nil
}
