package prometheus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	promenv "github.com/baton-gitops/baton/internal/testenv/prometheus"
	"github.com/baton-gitops/baton/promote/promql"
)

// The promotion gates' PromQL client (promote/promql) against a real
// Prometheus: its own tests speak to a fake, this one to the server the
// gates will meet, with its real answers and errors.
func TestPromotionGateClientAgainstARealPrometheus(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shop_requests_total", Help: "Requests."}, []string{"code"})
	reg.MustRegister(requests)
	requests.WithLabelValues("200").Add(99)
	requests.WithLabelValues("500").Add(1)
	srv := serve(t, reg)

	p := promenv.StartT(t, promenv.Options{})
	if err := p.SetTargets("shop", srv); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitUp(ctx, "shop", 1); err != nil {
		t.Fatal(err)
	}
	c, err := promql.New(p.URL, promql.Options{})
	if err != nil {
		t.Fatal(err)
	}

	// An error ratio gate: one sample.
	v, err := c.Query(ctx, `sum(shop_requests_total{code=~"5.."}) / sum(shop_requests_total)`, time.Time{})
	if err != nil || v != 0.01 {
		t.Fatalf("error ratio = %v, %v; want 0.01", v, err)
	}
	// A scalar.
	if v, err := c.Query(ctx, `scalar(sum(shop_requests_total))`, time.Time{}); err != nil || v != 100 {
		t.Fatalf("scalar = %v, %v; want 100", v, err)
	}
	// Missing metrics must not pass a gate.
	if _, err := c.Query(ctx, `sum(shop_requests_total{code="404"})`, time.Time{}); !errors.Is(err, promql.ErrNoData) {
		t.Fatalf("no data: error %v, want ErrNoData", err)
	}
	// Before the server had any data: no samples either.
	if _, err := c.Query(ctx, `sum(shop_requests_total)`, time.Now().Add(-time.Hour)); !errors.Is(err, promql.ErrNoData) {
		t.Fatalf("an hour ago: error %v, want ErrNoData", err)
	}
	// Two series: the gate's query must aggregate.
	if _, err := c.Query(ctx, `shop_requests_total`, time.Time{}); err == nil || !strings.Contains(err.Error(), "2 series") {
		t.Fatalf("two series: error %v", err)
	}
	// A division by zero is NaN, which no comparison may pass.
	if _, err := c.Query(ctx, `sum(shop_requests_total{code="404"} or vector(0)) / 0 * 0`, time.Time{}); err == nil ||
		!strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN: error %v", err)
	}
	// Prometheus's own refusal, with its error type.
	_, err = c.Query(ctx, `sum(rate(shop_requests_total[5m])`, time.Time{})
	var qe *promql.QueryError
	if !errors.As(err, &qe) || qe.Status != 400 || qe.ErrorType != "bad_data" {
		t.Fatalf("bad query: error %v, want a 400 bad_data QueryError", err)
	}
}
