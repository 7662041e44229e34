// Package managedfields trims metadata.managedFields from the objects
// Baton keeps in memory. The field sets (fieldsV1) are most of an object's
// size and no cache reader needs them: health's caches keep none (Drop, or
// a nil ManagedFields on typed objects), and the reconciler's watch cache
// keeps no object at all, only a few facts of each (reconciler/cache.go).
//
// Drop works on the object's map in place, never through
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
