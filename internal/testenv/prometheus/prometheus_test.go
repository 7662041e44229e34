package prometheus_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	promenv "github.com/baton-gitops/baton/internal/testenv/prometheus"
)

// target serves a registry with one counter, as an agent would.
func target(t *testing.T) (*httptest.Server, prometheus.Counter) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "harness_events_total", Help: "Events."})
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv, c
}

// serve serves a registry for the test and returns its host:port.
func serve(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestScrapesATargetAddedAfterStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, counter := target(t)
	counter.Add(3)
	p := promenv.StartT(t, promenv.Options{})
	if err := p.SetTargets("harness", strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitUp(ctx, "harness", 1); err != nil {
		t.Fatal(err)
	}
	got, err := p.Query(ctx, `harness_events_total{job="harness"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != 3 {
		t.Fatalf("harness_events_total = %v, want one sample of 3", got)
	}
	// A change in the target shows at the next scrapes.
	counter.Add(2)
	if _, err := p.WaitQuery(ctx, `harness_events_total == 5`, promenv.NonEmpty); err != nil {
		t.Fatal(err)
	}
	// Scalars come back as one label-less sample.
	if got, err := p.Query(ctx, `scalar(harness_events_total) * 2`); err != nil || len(got) != 1 || got[0].Value != 10 {
		t.Fatalf("scalar query = %v, %v", got, err)
	}
	// A range query sees the counter's history: 3, then 5.
	series, err := p.QueryRange(ctx, `harness_events_total`, time.Now().Add(-time.Minute), time.Now(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 1 || series[0].Values[0] != 3 || series[0].Values[len(series[0].Values)-1] != 5 {
		t.Fatalf("range of harness_events_total = %v, want one series from 3 to 5", series)
	}
	// A target that goes away is down.
	srv.Close()
	if _, err := p.WaitQuery(ctx, `up{job="harness"} == 0`, promenv.NonEmpty); err != nil {
		t.Fatal(err)
	}
}

func TestQueryErrorsNameTheExpression(t *testing.T) {
	p := promenv.StartT(t, promenv.Options{})
	_, err := p.Query(t.Context(), `sum(rate(x[5m])`)
	if err == nil || !strings.Contains(err.Error(), "bad_data") || !strings.Contains(err.Error(), `sum(rate(x[5m])`) {
		t.Fatalf("error %v, want bad_data naming the expression", err)
	}
}

func TestEvaluatesRuleFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv, counter := target(t)
	counter.Inc()
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: harness
    rules:
      - record: harness:events:doubled
        expr: harness_events_total * 2
      - alert: HarnessEventsSeen
        expr: harness_events_total > 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	p := promenv.StartT(t, promenv.Options{RuleFiles: []string{rules}})
	if err := p.SetTargets("harness", strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitQuery(ctx, `harness:events:doubled == 2`, promenv.NonEmpty); err != nil {
		t.Fatal(err)
	}
	if _, err := p.WaitQuery(ctx, `ALERTS{alertname="HarnessEventsSeen",alertstate="firing"}`, promenv.NonEmpty); err != nil {
		t.Fatal(err)
	}
}

func TestPromtool(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(up)\n"), 0o644)
	os.WriteFile(bad, []byte("groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(up\n"), 0o644)
	if out, err := promenv.Promtool(t.Context(), os.Stderr, "check", "rules", good); err != nil {
		t.Fatalf("good rules refused: %v", err)
	} else if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool output %q", out)
	}
	if _, err := promenv.Promtool(t.Context(), os.Stderr, "check", "rules", bad); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Fatalf("bad rules: error %v, want one naming the file", err)
	}
}
