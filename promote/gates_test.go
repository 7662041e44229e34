package promote

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/promote/promql"
	"github.com/baton-gitops/baton/source"
)

// prometheusAnswering serves the Prometheus HTTP API's /api/v1/query with
// a fixed answer. No real Prometheus runs in the test environment until
// the observability issue brings one; the answer format is the API's.
func prometheusAnswering(t *testing.T, status int, body string) *promql.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := promql.New(srv.URL, promql.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func vector(v string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"` + v + `"]}]}}`
}

func TestCheckGates(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rev := &source.Revision{Commit: fakeHash("c")}
	errRatio := QueryGate{Name: "error-ratio", Query: "sum(rate(err[5m]))/sum(rate(req[5m]))", Op: Less, Threshold: 0.05}
	tests := []struct {
		name       string
		st         SourceState
		queries    []QueryGate
		prom       *promql.Client
		wantPassed bool
		wantRetry  time.Duration
		wantFail   string // gate that fails
		wantDetail string
	}{
		{name: "not synced", st: SourceState{Healthy: true, HealthySince: now.Add(-time.Hour)},
			wantFail: GateSynced, wantDetail: "dev has not synced"},
		{name: "soaking", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-30 * time.Second)},
			wantFail: GateSoak, wantRetry: 90 * time.Second, wantDetail: "healthy for 30s of 2m0s"},
		{name: "synced after becoming healthy: soak counts from the sync",
			st:       SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-time.Hour), SyncedAt: now.Add(-time.Minute)},
			wantFail: GateSoak, wantRetry: time.Minute},
		{name: "soaked", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-2 * time.Minute)}, wantPassed: true},
		{name: "query passes", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-time.Hour)},
			queries: []QueryGate{errRatio}, prom: prometheusAnswering(t, 200, vector("0.01")), wantPassed: true},
		{name: "query over threshold", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-time.Hour)},
			queries: []QueryGate{errRatio}, prom: prometheusAnswering(t, 200, vector("0.2")),
			wantFail: "error-ratio", wantDetail: "0.2 is not < 0.05"},
		{name: "query errors", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-time.Hour)},
			queries: []QueryGate{errRatio}, prom: prometheusAnswering(t, 422, `{"status":"error","errorType":"execution","error":"boom"}`),
			wantFail: "error-ratio", wantDetail: "execution: boom"},
		{name: "no data", st: SourceState{Revision: rev, Healthy: true, HealthySince: now.Add(-time.Hour)},
			queries: []QueryGate{errRatio}, prom: prometheusAnswering(t, 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`),
			wantFail: "error-ratio", wantDetail: "no samples"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Edge{From: "dev", To: "staging", Soak: DefaultSoak, Queries: tt.queries}
			var q Querier
			if tt.prom != nil {
				q = tt.prom
			}
			results, passed, retry := checkGates(context.Background(), e, tt.st, now, q)
			if passed != tt.wantPassed {
				t.Fatalf("passed = %v, want %v: %v", passed, tt.wantPassed, results)
			}
			if retry != tt.wantRetry {
				t.Errorf("retry %s, want %s", retry, tt.wantRetry)
			}
			failed := firstFailed(results)
			if tt.wantFail == "" {
				if failed != nil {
					t.Errorf("gate %v failed", failed)
				}
				return
			}
			if failed == nil || failed.Gate != tt.wantFail {
				t.Fatalf("failed gate %v, want %s", failed, tt.wantFail)
			}
			if !strings.Contains(failed.Detail, tt.wantDetail) {
				t.Errorf("detail %q lacks %q", failed.Detail, tt.wantDetail)
			}
		})
	}
}

// An override skips the soak and the query gates: the querier is never
// asked (a nil one would panic), and the verdict names who and why.
func TestOverrideSkipsSoakAndQueries(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := Edge{From: "dev", To: "staging", Soak: time.Hour,
		Queries: []QueryGate{{Name: "error-ratio", Query: "x", Op: Less, Threshold: 0.05}}}
	st := SourceState{Revision: &source.Revision{Commit: fakeHash("c")}, Healthy: true, HealthySince: now,
		Override: &Override{By: "Ada <ada@example.invalid>", Reason: "hotfix\nfor INC-1"}}
	results, passed, retry := checkGates(context.Background(), e, st, now, nil)
	if !passed || retry != 0 || len(results) != 2 || results[1].Gate != GateOverridden ||
		results[1].Detail != "soak and query gates skipped by Ada <ada@example.invalid>: hotfix for INC-1" {
		t.Fatalf("override gates: passed %v retry %v %v", passed, retry, results)
	}
	// Overriding does not make an unsynced source promotable.
	st.Revision = nil
	if _, passed, _ := checkGates(context.Background(), e, st, now, nil); passed {
		t.Fatal("an override passed an unsynced source")
	}
	for _, o := range []Override{{Reason: "x"}, {By: "Ada", Reason: " "}} {
		if err := o.validate(); err == nil {
			t.Errorf("override %+v accepted", o)
		}
	}
}
