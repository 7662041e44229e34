package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// plugin checks a generators/transformers/validators entry: an inline
// configuration, a configuration file, or a kustomization folder producing
// configurations (Kustomize tries them in that order).
func (c *kustScan) plugin(key string, idx int, e string) error {
	if looksInline(e) {
		return c.pluginConfigs(c.at(key, idx)+" (inline)", []byte(e))
	}
	p, fi, err := c.stat(key, idx, e)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return c.into(key, idx, e, p, true)
	}
	if err := c.rootOnly(key, idx, e, p); err != nil {
		return err
	}
	data, err := c.fsys.readTree(p)
	if err != nil {
		return fmt.Errorf("%s: %w", c.entry(key, idx, e), err)
	}
	return c.pluginConfigs(c.entry(key, idx, e), data)
}

// looksInline reports whether a plugin entry is YAML content rather than a
// path: Kustomize treats whatever parses as objects as inline.
func looksInline(e string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(e), &n); err != nil || len(n.Content) == 0 {
		return false
	}
	return n.Content[0].Kind == yaml.MappingNode
}

// builtinPlugins are the kinds Kustomize runs in process (apiVersion
// "builtin"); everything else would be an exec, container or Go plugin.
var builtinPlugins = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range krusty.GetBuiltinPluginNames() {
		m[n] = true
	}
	return m
}()

// pluginPathKeys are the fields of builtin plugin configurations that name
// files Kustomize will load (and would fetch, were they URLs).
var pluginPathKeys = map[string]bool{
	"path": true, "paths": true, "files": true, "envs": true, "env": true,
	"targetFilePath": true, "argsFromFile": true,
}

// pluginConfigs checks every plugin configuration document in data.
func (c *kustScan) pluginConfigs(where string, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %s", where, yamlMessage(err))
		}
		var obj struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Metadata   struct {
				Name        string            `yaml:"name"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
		}
		if err := n.Decode(&obj); err != nil {
			return fmt.Errorf("%s: plugin configuration: %s", where, yamlMessage(err))
		}
		id := fmt.Sprintf("%s %s/%s", obj.APIVersion, obj.Kind, obj.Metadata.Name)
		if fn := functionSpec(obj.Metadata.Annotations); fn != "" {
			return fmt.Errorf("%s: %w: %s declares a KRM function (runtime: %s)", where, ErrPluginRefused, id, fn)
		}
		if obj.Kind == "HelmChartInflationGenerator" {
			return fmt.Errorf("%s: %w", where, ErrHelmRefused)
		}
		if obj.APIVersion != konfig.BuiltinPluginApiVersion || !builtinPlugins[obj.Kind] {
			return fmt.Errorf("%s: %w: %s is not a kustomize builtin (apiVersion: builtin); exec, container and Go plugins are refused", where, ErrPluginRefused, id)
		}
		var remote string
		walkPathValues(&n, func(v string) {
			if remote == "" && isRemote(v) {
				remote = v
			}
		})
		if remote != "" {
			if remoteAllowed(remote, c.allowed) {
				return fmt.Errorf("%s: %s: %w: %s; vendor it into the repository", where, id, ErrRemoteUnsupported, remote)
			}
			return fmt.Errorf("%s: %s: %w: %s is not under an allowed prefix (AllowedRemotePrefixes)", where, id, ErrRemoteRefused, remote)
		}
	}
}

// functionSpec names the runtime of a KRM function annotation ("exec",
// "container", "starlark"), or "" when the object declares none.
func functionSpec(ann map[string]string) string {
	spec := ann["config.kubernetes.io/function"]
	if spec == "" {
		spec = ann["config.k8s.io/function"]
	}
	if spec == "" {
		return ""
	}
	for _, rt := range []string{"exec", "container", "starlark"} {
		if strings.Contains(spec, rt+":") {
			return rt
		}
	}
	return "declared"
}

// walkPathValues calls fn with every scalar under a pluginPathKeys key, at
// any depth ("files" values may be "key=path").
func walkPathValues(n *yaml.Node, fn func(string)) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			walkPathValues(c, fn)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if pluginPathKeys[k.Value] {
				scalars(v, func(s string) {
					if _, after, ok := strings.Cut(s, "="); ok && !isRemote(s) {
						s = after
					}
					fn(s)
				})
			}
			walkPathValues(v, fn)
		}
	}
}

func scalars(n *yaml.Node, fn func(string)) {
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n.Value)
	case yaml.SequenceNode:
		for _, c := range n.Content {
			scalars(c, fn)
		}
	}
}
