// Package managedfields trims metadata.managedFields from the objects
// Baton keeps in memory. The field sets (fieldsV1) are most of an object's
// size and no cache reader needs them, so the rule is one: a cache keeps
// only what its reader uses. The reconciler's watch cache keeps each
// entry's manager, operation and subresource (the adoption check reads
// them; adoption itself GETs the full object); health's caches keep none
// (Drop, or a nil ManagedFields on typed objects).
//
// Both work on the object's map in place, never through
// GetManagedFields/SetManagedFields: those convert every entry through
// JSON, which costs a watch event more than the event itself, and return
// nothing at all for a malformed entry, which would leave the whole field
// in the cache.
package managedfields

// Drop removes metadata.managedFields from obj (an unstructured object's
// content).
func Drop(obj map[string]any) {
	if md, ok := obj["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
}

// Slim keeps metadata.managedFields' entries without their field sets: the
// manager, operation, subresource, apiVersion and time stay. Entries that
// are not maps are removed.
func Slim(obj map[string]any) {
	md, ok := obj["metadata"].(map[string]any)
	if !ok {
		return
	}
	entries, ok := md["managedFields"].([]any)
	if !ok {
		delete(md, "managedFields") // not a list: nothing a reader could use
		return
	}
	kept := entries[:0]
	for _, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		delete(m, "fieldsV1")
		delete(m, "fieldsType")
		kept = append(kept, m)
	}
	clear(entries[len(kept):])
	md["managedFields"] = kept
}
