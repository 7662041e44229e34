package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// parseKustomization decodes a kustomization file the way Kustomize does
// (unknown fields are errors), but reports problems with the file name and
// line: Kustomize says only "invalid Kustomization: json: unknown field".
func parseKustomization(file string, data []byte) (*types.Kustomization, *yaml.Node, error) {
	doc, err := firstDocument(data)
	if err != nil {
		return nil, nil, yamlError(file, err)
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return nil, nil, fieldError(file, doc, err)
	}
	if errs := k.EnforceFields(); len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s: %s", file, strings.Join(errs, "; "))
	}
	return &k, doc, nil
}

// firstDocument parses the first YAML document of data (the only one
// Kustomize reads from a kustomization file).
func firstDocument(data []byte) (*yaml.Node, error) {
	var n yaml.Node
	err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&n)
	if errors.Is(err, io.EOF) {
		return &yaml.Node{}, nil
	}
	return &n, err
}

// yamlError turns a go-yaml error into "file:line: message".
func yamlError(file string, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		if isParserProblem(m[2]) {
			// go-yaml prints parser errors with a zero-based line (the line
			// of the construct being parsed), scanner errors one-based.
			line++
		}
		return fmt.Errorf("%s:%d: yaml syntax error: %s", file, line, m[2])
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		first := te.Errors[0]
		if m := typeErrorLine.FindStringSubmatch(first); m != nil {
			return fmt.Errorf("%s:%s: %s", file, m[1], m[2])
		}
	}
	return fmt.Errorf("%s: yaml syntax error: %s", file, yamlMessage(err))
}

// isParserProblem reports whether a go-yaml message comes from its parser
// (rather than its scanner): those are the "did not find expected ..." and
// directive problems.
func isParserProblem(msg string) bool {
	for _, p := range []string{"did not find expected", "found duplicate %", "found incompatible YAML document", "found undefined tag handle"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

var (
	typeErrorLine = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownField  = regexp.MustCompile(`unknown field "([^"]+)"`)
	badFieldType  = regexp.MustCompile(`cannot unmarshal (.+) into Go struct field Kustomization\.([A-Za-z0-9_.]+) of type (\S+)`)
)

// fieldError rewrites Kustomize's decoding errors to name the file, the line
// and the field.
func fieldError(file string, doc *yaml.Node, err error) error {
	msg := err.Error()
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s: unknown field %q: not a kustomization field (check its spelling and indentation)",
			locate(file, keyLine(doc, m[1])), m[1])
	}
	if m := badFieldType.FindStringSubmatch(msg); m != nil {
		field := m[2]
		top, _, _ := strings.Cut(field, ".")
		return fmt.Errorf("%s: field %s: cannot use %s as %s", locate(file, keyLine(doc, top)), field, m[1], m[3])
	}
	return fmt.Errorf("%s: invalid kustomization: %s", file, strings.TrimPrefix(msg, "invalid Kustomization: "))
}

func locate(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// topMapping returns the mapping at the top of a parsed document.
func topMapping(doc *yaml.Node) *yaml.Node {
	if doc == nil {
		return nil
	}
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// keyLine returns the line of a top-level key (0 when absent). Kustomize
// matches field names case-insensitively, so this does too.
func keyLine(doc *yaml.Node, key string) int {
	m := topMapping(doc)
	if m == nil {
		return 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i].Line
		}
	}
	return 0
}

// entryLine returns the line of item idx of the top-level sequence key, or
// of the key itself when idx < 0 or the value is not a sequence.
func entryLine(doc *yaml.Node, key string, idx int) int {
	m := topMapping(doc)
	if m == nil {
		return 0
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if idx >= 0 && v.Kind == yaml.SequenceNode && idx < len(v.Content) {
			return v.Content[idx].Line
		}
		return m.Content[i].Line
	}
	return 0
}

// yamlLine matches go-yaml's "yaml: line N: message".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlMessage strips go-yaml's "yaml: " prefix.
func yamlMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}
