// Package promql is a small client for the Prometheus HTTP API's instant
// query (/api/v1/query), enough for promotion gates: one expression, one
// number. It speaks to anything that implements that API (Prometheus,
// Thanos, Mimir, VictoriaMetrics).
package promql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Options configures a Client.
type Options struct {
	// HTTPClient sends the requests; nil means a client with a 30 second
	// timeout.
	HTTPClient *http.Client
	// BearerToken, when set, is sent as "Authorization: Bearer <token>".
	BearerToken string
}

// Client queries one Prometheus-compatible server. It is safe for
// concurrent use.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// New returns a client for the server at baseURL (e.g.
// "http://prometheus.monitoring:9090"; a path prefix is kept).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("promql: %q: want an http or https URL", baseURL)
	}
	c := &Client{base: u, http: opts.HTTPClient, token: opts.BearerToken}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	return c, nil
}

// QueryError is a query the server refused or could not answer, with
// Prometheus's error type (bad_data, timeout, execution, ...).
type QueryError struct {
	Status    int
	ErrorType string
	Message   string
}

func (e *QueryError) Error() string {
	if e.ErrorType != "" {
		return fmt.Sprintf("prometheus answered %d: %s: %s", e.Status, e.ErrorType, e.Message)
	}
	return fmt.Sprintf("prometheus answered %d: %s", e.Status, e.Message)
}

// ErrNoData is returned when a query gives an empty vector: with no
// samples there is nothing to compare, and a gate must not pass on
// missing metrics.
var ErrNoData = errors.New("the query returned no samples")

// Query evaluates expr at time at and returns its value. The result must be
// a scalar or a vector of exactly one sample; anything else is an error
// naming what came back.
func (c *Client) Query(ctx context.Context, expr string, at time.Time) (float64, error) {
	form := url.Values{"query": {expr}}
	if !at.IsZero() {
		form.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64))
	}
	u := c.base.JoinPath("api", "v1", "query")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return 0, fmt.Errorf("promql: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("promql: query %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("promql: read answer: %w", err)
	}
	var ans answer
	if err := json.Unmarshal(body, &ans); err != nil {
		if resp.StatusCode != http.StatusOK {
			return 0, &QueryError{Status: resp.StatusCode, Message: snippet(body)}
		}
		return 0, fmt.Errorf("promql: answer is not the Prometheus API's JSON: %w", err)
	}
	if ans.Status != "success" || resp.StatusCode != http.StatusOK {
		return 0, &QueryError{Status: resp.StatusCode, ErrorType: ans.ErrorType, Message: ans.Error}
	}
	return ans.Data.value()
}

// answer is the API's envelope.
type answer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      data   `json:"data"`
}

type data struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// value extracts the single number of a scalar or one-sample vector.
func (d data) value() (float64, error) {
	switch d.ResultType {
	case "scalar":
		var pair []json.RawMessage
		if err := json.Unmarshal(d.Result, &pair); err != nil || len(pair) != 2 {
			return 0, fmt.Errorf("promql: malformed scalar %s", snippet(d.Result))
		}
		return sampleValue(pair[1])
	case "vector":
		var samples []struct {
			Metric map[string]string `json:"metric"`
			Value  []json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(d.Result, &samples); err != nil {
			return 0, fmt.Errorf("promql: malformed vector: %w", err)
		}
		switch {
		case len(samples) == 0:
			return 0, ErrNoData
		case len(samples) > 1:
			return 0, fmt.Errorf("promql: the query returned %d series, want one (aggregate it, e.g. with sum())", len(samples))
		case len(samples[0].Value) != 2:
			return 0, fmt.Errorf("promql: malformed sample %s", snippet(d.Result))
		}
		return sampleValue(samples[0].Value[1])
	case "":
		return 0, errors.New("promql: the answer has no result type")
	}
	return 0, fmt.Errorf("promql: the query returned a %s, want a scalar or a one-sample vector", d.ResultType)
}

// sampleValue parses a sample value, which the API writes as a string
// ("0.25", "NaN", "+Inf").
func sampleValue(raw json.RawMessage) (float64, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("promql: sample value %s is not a string", snippet(raw))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("promql: sample value %q: %w", s, err)
	}
	if math.IsNaN(v) {
		return 0, errors.New("promql: the query returned NaN (no traffic, or a division by zero)")
	}
	return v, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
