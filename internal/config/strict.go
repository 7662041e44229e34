package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/baton-gitops/baton/source"
)

// checkShape walks a decoded JSON document against the Go type it will be
// decoded into and reports, with the field path, every unknown field and
// every value of the wrong type. encoding/json alone names neither the path
// of an unknown field nor the list index of a wrong type, and matches field
// names without regard to case; this walk is exact.
func checkShape(path string, v any, t reflect.Type) []error {
	if v == nil {
		return nil // null leaves the zero value, as encoding/json does
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		s, ok := v.(string)
		if !ok {
			return []error{fieldErr(path, "must be a duration such as \"30s\" or \"5m\", got %s", describe(v))}
		}
		var d source.Duration
		if err := d.UnmarshalJSON([]byte(strconv.Quote(s))); err != nil {
			return []error{fieldErr(path, "%q is not a duration such as \"30s\" or \"5m\"", s)}
		}
		return nil
	}
	if t == quantityType {
		var err error
		switch v := v.(type) {
		case string:
			_, err = resource.ParseQuantity(v)
		case json.Number:
			_, err = resource.ParseQuantity(v.String())
		default:
			return []error{fieldErr(path, "must be a size such as \"8Mi\" or \"1Gi\", got %s", describe(v))}
		}
		if err != nil {
			return []error{fieldErr(path, "%q is not a size such as \"8Mi\" or \"1Gi\"", fmt.Sprint(v))}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return []error{fieldErr(path, "must be an object, got %s", describe(v))}
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var errs []error
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				errs = append(errs, unknownField(join(path, k), k, fields))
				continue
			}
			errs = append(errs, checkShape(join(path, k), obj[k], ft)...)
		}
		return errs
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return []error{fieldErr(path, "must be a list, got %s", describe(v))}
		}
		var errs []error
		for i, item := range list {
			errs = append(errs, checkShape(fmt.Sprintf("%s[%d]", path, i), item, t.Elem())...)
		}
		return errs
	case reflect.String:
		if _, ok := v.(string); !ok {
			return []error{fieldErr(path, "must be a string, got %s", describe(v))}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return []error{fieldErr(path, "must be true or false, got %s", describe(v))}
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			return []error{fieldErr(path, "must be a number, got %s", describe(v))}
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return []error{fieldErr(path, "must be a whole number, got %s", describe(v))}
		}
		if _, err := n.Int64(); err != nil {
			return []error{fieldErr(path, "must be a whole number, got %s", n)}
		}
	}
	return nil
}

var (
	durationType = reflect.TypeOf(source.Duration{})
	quantityType = reflect.TypeOf(resource.Quantity{})
)

// jsonFields maps the JSON names of t's fields to their types, with the
// fields of embedded structs promoted as encoding/json promotes them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// unknownField reports a field t does not have, suggesting the right
// spelling when only the case differs (encoding/json would have accepted
// it silently).
func unknownField(path, key string, fields map[string]reflect.Type) error {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fieldErr(path, "unknown field (did you mean %q?)", name)
		}
	}
	return fieldErr(path, "unknown field")
}

// describe names the JSON type of v for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("%t", v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
