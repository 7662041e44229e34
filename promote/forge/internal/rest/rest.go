// Package rest is the JSON-over-HTTP plumbing the forge providers share:
// requests with a token read at each call, and errors that carry the
// status and the forge's message.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Client sends JSON requests to one API root.
type Client struct {
	// Base is the API root without a trailing slash, e.g.
	// "https://git.example.com/api/v1".
	Base string
	HTTP *http.Client
	// Token and TokenFile give the access token; a file is read at every
	// request, so that a rotated Secret takes effect without a restart.
	Token, TokenFile string
	// Auth writes the token into a request (the scheme differs per forge).
	Auth func(req *http.Request, token string)
	// Header is set on every request.
	Header http.Header
}

// Error is an answer with a status of 400 or more.
type Error struct {
	Method, Path string
	Status       int
	Body         string
	Header       http.Header
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), snippet(e.Body))
}

// StatusOf returns the status of an *Error in err's chain, or 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do sends in (when not nil) as JSON to Base+path and decodes the answer
// into out (when not nil). It returns the response header for paging.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	return c.DoURL(ctx, method, c.Base+path, path, body, out)
}

// DoURL is Do with a full URL (a paging link) and a raw body; path names
// the call in errors.
func (c *Client) DoURL(ctx context.Context, method, url, path string, body io.Reader, out any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	token, err := c.token()
	if err != nil {
		return nil, err
	}
	if token != "" && c.Auth != nil {
		c.Auth(req, token)
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// The URL never carries the token, so the error is safe to show.
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return resp.Header, &Error{Method: method, Path: path, Status: resp.StatusCode, Body: string(b), Header: resp.Header}
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.Header, nil
}

func (c *Client) token() (string, error) {
	if c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func snippet(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
