package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/baton-gitops/baton/internal/agent"
	"github.com/baton-gitops/baton/internal/config"
	"github.com/baton-gitops/baton/internal/worktree"
	"github.com/baton-gitops/baton/reconciler"
)

// problem is one thing validate found wrong.
type problem struct {
	Environment string `json:"environment,omitempty"`
	// File is the manifest the object comes from, when it can be told.
	File string `json:"file,omitempty"`
	// Object is Kind/namespace/name.
	Object string `json:"object,omitempty"`
	// Field is the field at fault, as the API server names it.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (p problem) String() string {
	var parts []string
	for _, s := range []string{p.Environment, p.File, p.Object, p.Field} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(append(parts, p.Message), ": ")
}

// validateReport is what validate prints with -o json|yaml.
type validateReport struct {
	Config       string         `json:"config"`
	Cluster      string         `json:"cluster"`
	Environments []validatedEnv `json:"environments"`
	Problems     []problem      `json:"problems"`
}

type validatedEnv struct {
	Name    string `json:"name"`
	Objects int    `json:"objects"`
	// Checked says how far: "rendered", "schema" (against the cluster).
	Checked string `json:"checked"`
}

func (c *cli) validateCommand() *cobra.Command {
	var path, format string
	var envs []string
	var offline bool
	cmd := &cobra.Command{
		Use:   "validate [--path DIR] [--env NAME]... [--offline] [-o text|json|yaml]",
		Short: "check the configuration and every environment's render, against the cluster's schema (for a pre-merge check)",
		Long: "Checks, and lists every problem found (exit 1 when there is one):\n" +
			"  - the configuration file (every field);\n" +
			"  - every environment's render (or those of --env), from the working tree with --path\n" +
			"    (uncommitted changes included) or else from each environment's branch head, with the\n" +
			"    agent's refusals;\n" +
			"  - the environment's scope (what it may apply, as the agent checks it);\n" +
			"  - when a cluster is reachable (and not --offline), every object against the cluster's\n" +
			"    schema, by a server-side dry-run apply: errors name the file and the field.\n" +
			"Objects of kinds that a CustomResourceDefinition of the same render defines are checked\n" +
			"once that CRD is installed.",
		Example: "baton validate --path .\n" +
			"baton validate --path . --env prod --context prod\n" +
			"baton validate --offline -o json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, "text", formatJSON, formatYAML); err != nil {
				return err
			}
			rep, err := c.validate(cmd.Context(), path, envs, offline)
			if err != nil {
				return err
			}
			switch format {
			case formatJSON:
				err = writeJSON(c.stdout, rep)
			case formatYAML:
				err = writeYAML(c.stdout, rep)
			default:
				err = printValidate(c, rep)
			}
			if err != nil {
				return err
			}
			if n := len(rep.Problems); n > 0 {
				noun := "problems"
				if n == 1 {
					noun = "problem"
				}
				return fmt.Errorf("%d %s found", n, noun)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "path", "", "render the working tree DIR (uncommitted changes included) instead of the branches")
	_ = cmd.MarkFlagDirname("path")
	cmd.Flags().StringSliceVar(&envs, "env", nil, "environment to check (repeatable; default: all)")
	_ = cmd.RegisterFlagCompletionFunc("env", c.completeEnvironments)
	cmd.Flags().BoolVar(&offline, "offline", false, "do not contact the cluster (no schema check)")
	outputFlag(cmd, &format, "text", "text", formatJSON, formatYAML)
	return cmd
}

func printValidate(c *cli, rep validateReport) error {
	fmt.Fprintf(c.stdout, "configuration %s: ok\n", rep.Config)
	for _, e := range rep.Environments {
		fmt.Fprintf(c.stdout, "%s: %d objects, %s\n", e.Name, e.Objects, e.Checked)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(c.stdout, "problem: "+p.String())
	}
	return nil
}

func (c *cli) validate(ctx context.Context, dir string, only []string, offline bool) (validateReport, error) {
	rep := validateReport{Config: c.configPath, Problems: []problem{}, Environments: []validatedEnv{}}
	cfg, err := c.loadConfig()
	if err != nil {
		// Every field problem is on its own line already.
		return rep, err
	}
	var envs []*config.Environment
	for _, name := range only {
		e, err := environment(cfg, name)
		if err != nil {
			return rep, err
		}
		envs = append(envs, e)
	}
	if len(only) == 0 {
		for i := range cfg.Environments {
			envs = append(envs, &cfg.Environments[i])
		}
	}
	var checker *schemaChecker
	rep.Cluster = "not checked (--offline)"
	if !offline {
		if checker, err = c.newSchemaChecker(); err != nil {
			rep.Cluster = "not checked: " + err.Error()
			fmt.Fprintf(c.stderr, "note: no schema check: %v\n", err)
		} else {
			rep.Cluster = c.contextName()
		}
	}
	for _, env := range envs {
		v := validatedEnv{Name: env.Name}
		tree, objs, err := c.validationRender(ctx, cfg, env, dir)
		if err != nil {
			rep.Problems = append(rep.Problems, problem{Environment: env.Name, Message: err.Error()})
			v.Checked = "render failed"
			rep.Environments = append(rep.Environments, v)
			continue
		}
		v.Objects, v.Checked = len(objs), "rendered"
		sources := manifestSources(tree)
		for _, msg := range checkScope(cfg, *env, objs, sources, checker) {
			rep.Problems = append(rep.Problems, problem{Environment: env.Name, Message: msg})
		}
		if checker != nil {
			for _, p := range checker.check(ctx, *env, objs) {
				p.Environment = env.Name
				if p.File == "" {
					p.File = sources.find(p.kind, p.name)
				}
				rep.Problems = append(rep.Problems, p.problem)
			}
			v.Checked = "rendered and checked against the cluster's schema"
		}
		rep.Environments = append(rep.Environments, v)
	}
	return rep, nil
}

// validationRender renders env from the working tree (dir) or its branch
// head, and returns the tree it read for finding source files.
func (c *cli) validationRender(ctx context.Context, cfg *config.Config, env *config.Environment, dir string) (fs.FS, []*unstructured.Unstructured, error) {
	r, err := newRenderer(cfg)
	if err != nil {
		return nil, nil, err
	}
	p := env.Path
	if p == "" {
		p = "."
	}
	if dir != "" {
		top, _, err := worktree.Top(dir)
		if err != nil {
			return nil, nil, err
		}
		snap, err := worktree.Open(top)
		if err != nil {
			return nil, nil, err
		}
		// The snapshot stays open for the source lookup; the process ends
		// soon after.
		res, err := r.Render(ctx, snap, p)
		if err != nil {
			return nil, nil, fmt.Errorf("render %s: %w", top, err)
		}
		return snap, res.Objects, nil
	}
	repo, rev, err := openBranch(ctx, cfg, env, env.Branch)
	if err != nil {
		return nil, nil, err
	}
	defer repo.Close()
	res, err := r.Render(ctx, rev.Snapshot, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s@%s: %w", repo.URL(), env.Branch, err)
	}
	return rev.Snapshot, res.Objects, nil
}

// checkScope lists what the agent would refuse to apply for env: objects
// outside its scope and the agent's own objects, by the reconciler's rules.
// With a cluster, kinds are known from its discovery; without, from the
// objects themselves, the CRDs in the set and the built-in cluster-scoped
// kinds.
func checkScope(cfg *config.Config, env config.Environment, objs []*unstructured.Unstructured, sources sourceIndex, checker *schemaChecker) []string {
	req := agent.SyncRequest(env, "", objs)
	req.SourceOf = func(o *unstructured.Unstructured) string { return sources.find(o.GetKind(), o.GetName()) }
	crds := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
			crds[schema.GroupKind{Group: group, Kind: kind}] = scope != "Cluster"
		}
	}
	namespaced := func(gvk schema.GroupVersionKind) (bool, bool) {
		if checker != nil {
			if m, err := checker.mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
				return m.Scope.Name() == meta.RESTScopeNameNamespace, true
			}
		}
		if ns, ok := crds[gvk.GroupKind()]; ok {
			return ns, true
		}
		if builtinClusterKinds[gvk.GroupKind()] {
			return false, true
		}
		if gvk.Group == "" || builtinGroups[gvk.Group] {
			return true, true // a built-in kind that is not cluster-scoped
		}
		return false, false
	}
	var out []string
	for _, v := range reconciler.CheckScope(req, cfg.Agent.Namespace, namespaced) {
		out = append(out, "refused ("+v.Rule+"): "+v.String())
	}
	return out
}

// builtinClusterKinds are Kubernetes' own cluster-scoped kinds, for
// checking scope without a cluster.
var builtinClusterKinds = map[schema.GroupKind]bool{
	{Kind: "Namespace"}: true, {Kind: "Node"}: true, {Kind: "PersistentVolume"}: true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:                         true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}:                  true,
	{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:                 true,
	{Group: "apiregistration.k8s.io", Kind: "APIService"}:                             true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingWebhookConfiguration"}:   true,
	{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"}:     true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        true,
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                                   true,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                                      true,
	{Group: "storage.k8s.io", Kind: "VolumeAttachment"}:                               true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:                               true,
	{Group: "networking.k8s.io", Kind: "IngressClass"}:                                true,
	{Group: "node.k8s.io", Kind: "RuntimeClass"}:                                      true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "FlowSchema"}:                       true,
	{Group: "flowcontrol.apiserver.k8s.io", Kind: "PriorityLevelConfiguration"}:       true,
	{Group: "certificates.k8s.io", Kind: "CertificateSigningRequest"}:                 true,
}

// builtinGroups hold Kubernetes' own kinds: a kind of theirs that is not
// in builtinClusterKinds is namespaced.
var builtinGroups = map[string]bool{
	"apps": true, "batch": true, "autoscaling": true, "policy": true, "networking.k8s.io": true,
	"rbac.authorization.k8s.io": true, "coordination.k8s.io": true, "discovery.k8s.io": true,
	"storage.k8s.io": true, "scheduling.k8s.io": true, "node.k8s.io": true, "apiextensions.k8s.io": true,
	"admissionregistration.k8s.io": true, "certificates.k8s.io": true, "events.k8s.io": true,
	"flowcontrol.apiserver.k8s.io": true, "apiregistration.k8s.io": true,
}

// schemaChecker dry-runs objects against the cluster.
type schemaChecker struct {
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// objectProblem is a problem about one object, with its identity for
// finding its file.
type objectProblem struct {
	problem
	kind, name string
}

func (c *cli) newSchemaChecker() (*schemaChecker, error) {
	rc, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	if _, err := dc.ServerVersion(); err != nil {
		return nil, fmt.Errorf("cluster %s unreachable: %w", c.contextName(), err)
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &schemaChecker{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// check dry-runs every object with server-side apply, as the agent
// applies it, and returns what the API server refused, field by field.
func (s *schemaChecker) check(ctx context.Context, env config.Environment, objs []*unstructured.Unstructured) []objectProblem {
	defined := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			g, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			k, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			defined[schema.GroupKind{Group: g, Kind: k}] = true
		}
	}
	var out []objectProblem
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		ref := objectName(o, env.Namespace)
		mapping, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			if defined[gvk.GroupKind()] {
				continue // its CRD is in this render, not yet in the cluster
			}
			out = append(out, objectProblem{problem{Object: ref, Message: fmt.Sprintf("the cluster has no kind %s: %v", gvk, err)}, o.GetKind(), o.GetName()})
			continue
		}
		obj := o.DeepCopy()
		var ri dynamic.ResourceInterface = s.dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == "namespace" {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(env.Namespace)
			}
			ri = s.dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
		}
		_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "baton-validate", Force: true, DryRun: []string{metav1.DryRunAll}})
		if err == nil || isMissingNamespace(err) {
			continue
		}
		for _, p := range fieldProblems(err) {
			p.Object = ref
			out = append(out, objectProblem{p, o.GetKind(), o.GetName()})
		}
	}
	return out
}

// isMissingNamespace: the environment's namespace may be created by the
// sync itself; the object cannot be checked before.
func isMissingNamespace(err error) bool {
	var st apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &st) {
		return false
	}
	d := st.Status().Details
	return d != nil && d.Kind == "namespaces"
}

// fieldProblems splits an API server refusal into one problem per field.
func fieldProblems(err error) []problem {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		if d := st.Status().Details; d != nil && len(d.Causes) > 0 {
			var out []problem
			for _, c := range d.Causes {
				out = append(out, problem{Field: strings.TrimPrefix(c.Field, "."), Message: c.Message})
			}
			return out
		}
		msg := st.Status().Message
		// Server-side apply's own schema check: "failed to create typed
		// patch object (...): .spec.replicas: expected numeric ...".
		if i := strings.Index(msg, "): ."); i >= 0 {
			rest := msg[i+len("): ."):]
			if field, m, ok := strings.Cut(rest, ": "); ok {
				return []problem{{Field: field, Message: m}}
			}
		}
		return []problem{{Message: msg}}
	}
	return []problem{{Message: err.Error()}}
}

func objectName(o *unstructured.Unstructured, defaultNS string) string {
	ns := o.GetNamespace()
	if ns == "" {
		ns = defaultNS
	}
	if ns == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + ns + "/" + o.GetName()
}

// sourceIndex maps kind and name to the manifests that define them.
type sourceIndex map[string][]string

// manifestSources indexes every YAML document of the tree by kind and
// metadata.name.
func manifestSources(tree fs.FS) sourceIndex {
	idx := sourceIndex{}
	_ = fs.WalkDir(tree, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != "." {
				return fs.SkipDir
			}
			return nil
		}
		switch path.Ext(p) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		b, err := fs.ReadFile(tree, p)
		if err != nil || len(b) > 1<<20 {
			return nil
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var m struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal(doc, &m) == nil && m.Kind != "" && m.Metadata.Name != "" {
				k := m.Kind + "/" + m.Metadata.Name
				idx[k] = append(idx[k], p)
			}
		}
		return nil
	})
	return idx
}

// find names the file of an object: an exact kind and name, else the one
// whose name the rendered name contains (a name prefix or suffix).
func (idx sourceIndex) find(kind, name string) string {
	if files := idx[kind+"/"+name]; len(files) > 0 {
		return strings.Join(files, ", ")
	}
	var best []string
	for k, files := range idx {
		kk, nn, _ := strings.Cut(k, "/")
		if kk == kind && strings.Contains(name, nn) {
			best = append(best, files...)
		}
	}
	sort.Strings(best)
	return strings.Join(best, ", ")
}
