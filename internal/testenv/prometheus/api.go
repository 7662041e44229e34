package prometheus

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Sample is one series of an instant query's result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query evaluates expr now and returns its samples: the series of a vector,
// or one label-less sample for a scalar. An expression Prometheus refuses
// is an error naming it.
func (s *Server) Query(ctx context.Context, expr string) ([]Sample, error) {
	u := s.URL + "/api/v1/query?" + url.Values{"query": {expr}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %s", expr, resp.Status, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", expr, r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		out := make([]Sample, 0, len(v))
		for _, e := range v {
			f, err := sampleValue(e.Value)
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			out = append(out, Sample{Labels: e.Metric, Value: f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		f, err := sampleValue(v)
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		return []Sample{{Value: f}}, nil
	}
	return nil, fmt.Errorf("query %q: result type %s, want vector or scalar", expr, r.Data.ResultType)
}

// sampleValue reads the [time, "value"] pair of the API.
func sampleValue(pair [2]any) (float64, error) {
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", pair[1])
	}
	return strconv.ParseFloat(s, 64)
}

// WaitQuery evaluates expr until cond accepts its samples, and returns
// them; it fails when ctx ends, with the last samples or error. It polls
// at the scrape interval's pace: a query is the only way to observe
// Prometheus's state.
func (s *Server) WaitQuery(ctx context.Context, expr string, cond func([]Sample) bool) ([]Sample, error) {
	var last []Sample
	var lastErr error
	for {
		last, lastErr = s.Query(ctx, expr)
		if lastErr == nil && cond(last) {
			return last, nil
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("wait for %s: %w (last error: %v)", expr, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("wait for %s: %w (last result: %v)", expr, ctx.Err(), last)
		case <-s.done:
			return nil, fmt.Errorf("wait for %s: prometheus exited:\n%s", expr, s.Log())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// NonEmpty is a WaitQuery condition: at least one sample.
func NonEmpty(samples []Sample) bool { return len(samples) > 0 }

// WaitUp waits until n targets of job are scraped successfully (up == 1).
func (s *Server) WaitUp(ctx context.Context, job string, n int) error {
	_, err := s.WaitQuery(ctx, fmt.Sprintf(`up{job=%q} == 1`, job), func(v []Sample) bool { return len(v) >= n })
	return err
}

// Series is one series of a range query's result.
type Series struct {
	Labels map[string]string
	Values []float64
}

// QueryRange evaluates expr at every step from start to end, as a graph
// panel does, and returns its series.
func (s *Server) QueryRange(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]Series, error) {
	q := url.Values{"query": {expr},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query_range?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query range %q: %w", expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query range %q: %w", expr, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query range %q: %s: %s", expr, resp.Status, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query range %q: %s: %s", expr, r.ErrorType, r.Error)
	}
	out := make([]Series, 0, len(r.Data.Result))
	for _, e := range r.Data.Result {
		sr := Series{Labels: e.Metric}
		for _, v := range e.Values {
			f, err := sampleValue(v)
			if err != nil {
				return nil, fmt.Errorf("query range %q: %w", expr, err)
			}
			sr.Values = append(sr.Values, f)
		}
		out = append(out, sr)
	}
	return out, nil
}
