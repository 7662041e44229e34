package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"sigs.k8s.io/yaml"
)

// Load reads, defaults and validates the configuration file at path. Every
// problem found is reported, each naming the file and the field path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, err := Parse(data)
	var cerr *Error
	if errors.As(err, &cerr) {
		cerr.File = path
	}
	return cfg, err
}

// Parse decodes a configuration document, applies the defaults (see
// defaults.go) and validates the result. Its errors are *Error.
func Parse(data []byte) (*Config, error) {
	// Duplicate keys are an error: YAML would silently keep the last one.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
		msg = strings.ReplaceAll(msg, "\n  ", " ") // one line per problem
		return nil, &Error{Problems: []error{&FieldError{Path: "(document)", Message: msg}}}
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, &Error{Problems: []error{fieldErr("", "%v", err)}}
	}
	if problems := checkShape("", doc, reflect.TypeOf(Config{})); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	var cfg Config
	dec = json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		// checkShape has caught what it knows; this is a backstop.
		return nil, &Error{Problems: []error{fieldErr("", "%v", err)}}
	}
	applyDefaults(&cfg)
	if problems := validate(&cfg); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return &cfg, nil
}
