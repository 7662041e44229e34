package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/baton-gitops/baton/internal/testenv/gitserver"
)

// With listen.webhook, the webhook is served on its own listener and
// nowhere else, and status and metrics are not served there; a client that
// opens a connection and sends nothing is cut off by the header timeout.
func TestWebhookListensApartAndSlowClientsAreCutOff(t *testing.T) {
	f := newFixture(t, overlay(1, "v1"))
	cfg := f.config(f.configYAML(time.Hour, "", "", "listen: {http: '127.0.0.1:0', webhook: ':0'}\n"))
	cfg.Agent.CacheDir = t.TempDir()
	main, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hook, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	rec := &countingRecorder{}
	a, err := New(Options{Config: cfg, REST: env.Config(), Identity: "apart", Listener: main, WebhookListener: hook,
		Recorder: rec, Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metrics\n") }),
		Logger: slog.New(slog.NewJSONHandler(testWriter{t, "apart"}, nil))})
	require.NoError(t, err)
	a.limits = httpLimits{readHeader: 300 * time.Millisecond, read: time.Second, write: time.Second, idle: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	mainURL, hookURL := "http://"+main.Addr().String(), "http://"+hook.Addr().String()
	first := f.repo.Head(t, "env/dev")
	eventually(t, 30*time.Second, "the first revision applied", func() bool { return rec.synced(first) })

	status := func(method, url string) int {
		req, err := http.NewRequest(method, url, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusNotFound, status(http.MethodPost, mainURL+PathWebhook), "webhook on the status listener")
	require.Equal(t, http.StatusOK, status(http.MethodGet, mainURL+PathMetrics))
	require.Equal(t, http.StatusOK, status(http.MethodGet, mainURL+PathStatus))
	for _, p := range []string{PathMetrics, PathStatus, PathHealthz} {
		require.Equal(t, http.StatusNotFound, status(http.MethodGet, hookURL+p), "%s on the webhook listener", p)
	}
	require.Equal(t, http.StatusUnauthorized, status(http.MethodPost, hookURL+PathWebhook), "an unsigned webhook")

	// A signed push on the webhook listener is applied.
	second := f.repo.Commit(t, "env/dev", gitserver.Change{Write: overlay(1, "v2")})
	require.Equal(t, http.StatusOK, f.postWebhook(hookURL).StatusCode)
	eventually(t, 10*time.Second, "the pushed commit applied", func() bool { return rec.synced(second) })

	// Slowloris: a connection that never finishes its headers is closed.
	for _, addr := range []string{main.Addr().String(), hook.Addr().String()} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		start := time.Now()
		_, err = io.ReadAll(conn)
		var nerr net.Error
		require.False(t, errors.As(err, &nerr) && nerr.Timeout(), "%s kept a half-sent request open for 10s", addr)
		t.Logf("%s closed a half-sent request after %s", addr, time.Since(start).Round(time.Millisecond))
		conn.Close()
	}
}
