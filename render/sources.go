package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// manifestDoc is one object of a manifest file, as far as diagnostics need.
type manifestDoc struct {
	file       string
	line       int
	apiVersion string
	kind       string
	name       string
	namespace  string
}

func (d manifestDoc) String() string { return fmt.Sprintf("%s:%d", d.file, d.line) }

// manifestDocs lists the objects of a manifest stream (List items included).
// A syntax error is returned as "file:line: ...", with the line counted from
// the top of the file; Kustomize counts from the top of the document.
func manifestDocs(file string, data []byte) ([]manifestDoc, error) {
	var out []manifestDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, yamlError(file, err)
		}
		m := topMapping(&n)
		if m == nil {
			continue // empty or null document, skipped by Kustomize too
		}
		d := docOf(file, m)
		if items := mapValue(m, "items"); strings.HasSuffix(d.kind, "List") && items != nil && items.Kind == yaml.SequenceNode {
			for _, it := range items.Content {
				if it.Kind == yaml.MappingNode {
					out = append(out, docOf(file, it))
				}
			}
			continue
		}
		out = append(out, d)
	}
}

func docOf(file string, m *yaml.Node) manifestDoc {
	d := manifestDoc{file: file, line: m.Line}
	d.apiVersion = scalarValue(mapValue(m, "apiVersion"))
	d.kind = scalarValue(mapValue(m, "kind"))
	if md := mapValue(m, "metadata"); md != nil && md.Kind == yaml.MappingNode {
		d.name = scalarValue(mapValue(md, "name"))
		d.namespace = scalarValue(mapValue(md, "namespace"))
	}
	return d
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalarValue(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// allDocs reads every local resource file of the graph. It stops at the
// first syntax error, which it returns.
func (g *graph) allDocs() ([]manifestDoc, error) {
	var out []manifestDoc
	for _, f := range g.resources {
		data, err := g.fsys.readTree(f)
		if err != nil {
			return out, fmt.Errorf("read %s: %w", f, err)
		}
		docs, err := manifestDocs(f, data)
		out = append(out, docs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// sourcesOf finds the documents an object was probably rendered from: same
// kind (and apiVersion when given), and the same name or a name the rendered
// one contains (namePrefix, nameSuffix and generator hashes change names).
// Exact names win over partial ones.
func sourcesOf(docs []manifestDoc, apiVersion, kind, name string) []manifestDoc {
	var exact, partial []manifestDoc
	for _, d := range docs {
		if d.kind != kind || (apiVersion != "" && d.apiVersion != apiVersion) || d.name == "" {
			continue
		}
		switch {
		case d.name == name:
			exact = append(exact, d)
		case strings.Contains(name, d.name):
			partial = append(partial, d)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return partial
}

func joinSources(docs []manifestDoc) string {
	s := make([]string, len(docs))
	for i, d := range docs {
		s[i] = d.String()
	}
	return strings.Join(s, " and ")
}

// objectRef names an object the house way: Kind/namespace/name, or
// Kind/name when it has no namespace.
func objectRef(kind, namespace, name string) string {
	if kind == "" {
		kind = "<no kind>"
	}
	if name == "" {
		name = "<no name>"
	}
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}
