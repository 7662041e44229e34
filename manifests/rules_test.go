package manifests_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/baton-gitops/baton/health"
	"github.com/baton-gitops/baton/internal/testenv/prometheus"
)

// ruleGroups returns the PrometheusRule's spec.groups as a plain rule file
// (what promtool and Prometheus read).
func ruleGroups(t testing.TB) []byte {
	t.Helper()
	objs := readYAMLFile(t, filepath.Join(dir(t), "components", "monitoring", "prometheusrule.yaml"))
	if len(objs) != 1 {
		t.Fatalf("prometheusrule.yaml holds %d objects", len(objs))
	}
	spec, ok := objs[0].Object["spec"]
	if !ok {
		t.Fatal("prometheusrule.yaml has no spec")
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeRuleFile writes the alert rules to a folder and returns the path.
func writeRuleFile(t testing.TB, folder string) string {
	t.Helper()
	path := filepath.Join(folder, "rules.yaml")
	if err := os.WriteFile(path, ruleGroups(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// alertRule is one alerting rule.
type alertRule struct {
	Alert, Expr string
	Annotations map[string]string
}

func alertRules(t testing.TB) []alertRule {
	t.Helper()
	var doc struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(ruleGroups(t), &doc); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range doc.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// TestDegradedAlertNamesEveryCause: the alert a degraded environment
// raises lists the causes baton_health_failures_total can carry, the closed
// set health.Causes gives the metrics.
func TestDegradedAlertNamesEveryCause(t *testing.T) {
	for _, r := range alertRules(t) {
		if r.Alert != "BatonEnvironmentDegraded" {
			continue
		}
		desc := strings.Join(strings.Fields(r.Annotations["description"]), " ")
		var names []string
		for _, c := range health.Causes() {
			names = append(names, string(c))
		}
		if want := "(" + strings.Join(names, ", ") + ")"; !strings.Contains(desc, want) {
			t.Errorf("BatonEnvironmentDegraded's description does not list the causes %s: %s", want, desc)
		}
		return
	}
	t.Fatal("no BatonEnvironmentDegraded alert")
}

func TestAlertRulesPassPromtool(t *testing.T) {
	folder := t.TempDir()
	rules := writeRuleFile(t, folder)
	if _, err := prometheus.Promtool(t.Context(), os.Stderr, "check", "rules", rules); err != nil {
		t.Fatal(err)
	}
	// The unit tests of the alerts, beside the rules they read.
	tests, err := os.ReadFile(filepath.Join(dir(t), "components", "monitoring", "alerts.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(folder, "alerts.test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := prometheus.Promtool(t.Context(), os.Stderr, "test", "rules", filepath.Join(folder, "alerts.test.yaml")); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}

	// Every alert has a case that makes it fire.
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &doc); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	for _, r := range alertRules(t) {
		if !fires[r.Alert] {
			t.Errorf("alert %s has no promtool case in which it fires", r.Alert)
		}
	}
}

// panelQuery is one query of a dashboard panel.
type panelQuery struct {
	Panel, RefID, Expr string
}

func (q panelQuery) String() string { return fmt.Sprintf("panel %q query %s", q.Panel, q.RefID) }

// dashboardQueries returns every query of the dashboard's panels, and the
// template variables' label_values() selectors.
func dashboardQueries(t testing.TB) (panels []panelQuery, variables []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir(t), "dashboards", "baton.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboards/baton.json: %v", err)
	}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			panels = append(panels, panelQuery{Panel: p.Title, RefID: tg.RefID, Expr: tg.Expr})
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *[a-z_]+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("template variable query %q: want label_values(selector, label)", v.Definition)
			continue
		}
		variables = append(variables, m[1])
	}
	return panels, variables
}

// expand replaces Grafana's variables as Grafana would for a range of
// rangeWindow: the job and environment variables by "All".
func expand(expr, rangeWindow string) string {
	return strings.NewReplacer(
		"$__rate_interval", "1m",
		"$__interval", "15s",
		"$__range", rangeWindow,
		"$job", ".+",
		"$environment", ".*",
	).Replace(expr)
}

func TestDashboardQueriesParse(t *testing.T) {
	panels, variables := dashboardQueries(t)
	if len(panels) < 20 {
		t.Fatalf("%d panel queries: the dashboard lost its panels", len(panels))
	}
	// promtool checks recording rules' expressions with Prometheus's own
	// parser: one rule per query, named after its panel.
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	names := map[string]panelQuery{}
	for i, q := range panels {
		name := fmt.Sprintf("dashboard:query_%02d", i)
		names[name] = q
		rules = append(rules, rule{Record: name, Expr: expand(q.Expr, "1h")})
	}
	for i, sel := range variables {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:variable_%02d", i), Expr: expand(sel, "1h")})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := prometheus.Promtool(t.Context(), os.Stderr, "check", "rules", path); err != nil {
		// Name the panels of the failing rules.
		for name, q := range names {
			if strings.Contains(out, name) {
				t.Errorf("%s: %s", q, q.Expr)
			}
		}
		t.Fatal(err)
	}
}

// metricRef finds metric names in PromQL: Baton's, and the Go runtime and
// process collectors'. Label names and functions never start with these
// prefixes; _bucket, _sum and _count are the series of a histogram.
var metricRef = regexp.MustCompile(`\b((?:baton|go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9])\b`)

// metricNames returns the metric families an expression reads.
func metricNames(expr string) []string {
	seen := map[string]bool{}
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		seen[m[1]] = true
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// familyOf maps a series name to its metric family: histogram series
// carry a suffix.
func familyOf(name string, families map[string]bool) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && families[base] {
			return base
		}
	}
	return name
}
