package promql_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/baton-gitops/baton/promote/promql"
)

// No real Prometheus runs in the test environment yet (the observability
// issue brings one): these tests use an httptest server that speaks the
// Prometheus HTTP API's /api/v1/query, with answers in the documented
// format.
func fakePrometheus(t *testing.T, status int, body string, check func(r *http.Request, form url.Values)) *promql.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prom/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		if check != nil {
			check(r, form)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := promql.New(srv.URL+"/prom", promql.Options{BearerToken: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQuery(t *testing.T) {
	at := time.Date(2026, 11, 27, 5, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name    string
		status  int
		body    string
		want    float64
		wantErr string
	}{
		{"vector of one", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1764219600.5,"0.0125"]}]}}`, 0.0125, ""},
		{"scalar", 200, `{"status":"success","data":{"resultType":"scalar","result":[1764219600.5,"3"]}}`, 3, ""},
		{"infinity", 200, `{"status":"success","data":{"resultType":"scalar","result":[1764219600.5,"+Inf"]}}`, 0, ""},
		{"empty vector", 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`, 0, "no samples"},
		{"two series", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}`, 0, "2 series, want one"},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, "returned a matrix"},
		{"NaN", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}`, 0, "NaN"},
		{"bad query", 400, `{"status":"error","errorType":"bad_data","error":"parse error at char 5"}`, 0, "400: bad_data: parse error at char 5"},
		{"server down", 503, `<html>unavailable</html>`, 0, "503: <html>unavailable</html>"},
		{"not json", 200, `hello`, 0, "not the Prometheus API's JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakePrometheus(t, tt.status, tt.body, func(r *http.Request, form url.Values) {
				if got := form.Get("query"); got != "sum(rate(errors[5m]))" {
					t.Errorf("query %q", got)
				}
				if got := form.Get("time"); got != "1795755600.500" {
					t.Errorf("time %q", got)
				}
				if got := r.Header.Get("Authorization"); got != "Bearer s3cret" {
					t.Errorf("authorization %q", got)
				}
			})
			v, err := c.Query(context.Background(), "sum(rate(errors[5m]))", at)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "infinity" {
				if v < 1e308 {
					t.Errorf("value %v, want +Inf", v)
				}
				return
			}
			if v != tt.want {
				t.Errorf("value %v, want %v", v, tt.want)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	c := fakePrometheus(t, 400, `{"status":"error","errorType":"bad_data","error":"x"}`, nil)
	_, err := c.Query(context.Background(), "up", time.Time{})
	var qe *promql.QueryError
	if !errors.As(err, &qe) || qe.ErrorType != "bad_data" || qe.Status != 400 {
		t.Errorf("error %#v, want a QueryError with bad_data", err)
	}
	c = fakePrometheus(t, 200, `{"status":"success","data":{"resultType":"vector","result":[]}}`, nil)
	if _, err := c.Query(context.Background(), "up", time.Time{}); !errors.Is(err, promql.ErrNoData) {
		t.Errorf("empty vector: %v, want ErrNoData", err)
	}
	if _, err := promql.New("prometheus:9090", promql.Options{}); err == nil {
		t.Error("a URL without scheme was accepted")
	}
	unreachable, _ := promql.New("http://127.0.0.1:1", promql.Options{})
	if _, err := unreachable.Query(context.Background(), "up", time.Time{}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable server: %v", err)
	}
}
