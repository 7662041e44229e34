package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// HTTP paths the agent serves.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	PathWebhook = "/webhook"
	PathStatus  = "/api/status"
)

// httpLimits bound what one client may hold of the agent's HTTP servers:
// a slow or idle client keeps a connection for a bounded time, so that
// many of them cannot exhaust the agent.
type httpLimits struct {
	readHeader time.Duration
	// read covers a whole request; webhook bodies are at most
	// source.DefaultMaxBodyBytes.
	read time.Duration
	// write covers writing the answer: a /metrics scrape or /api/status
	// takes milliseconds.
	write time.Duration
	idle  time.Duration
}

func defaultHTTPLimits() httpLimits {
	return httpLimits{readHeader: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute}
}

// maxHeaderBytes bounds a request's headers.
const maxHeaderBytes = 64 << 10

// Handler serves the agent's HTTP endpoints:
//
//	/healthz     200 while the process serves (liveness)
//	/readyz      200 for a standby; for the leader, once the first sync of
//	             every environment was attempted; 503 with the pending ones before
//	/metrics     the metrics handler given in Options (404 without one)
//	/webhook     push and pull request webhooks (GitHub, GitLab, Gitea;
//	             pushes also generic), signed with the webhook secret (404
//	             when none is configured, or when listen.webhook serves it
//	             apart: see WebhookHandler)
//	/api/status  the Status as JSON
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET "+PathReadyz, func(w http.ResponseWriter, _ *http.Request) {
		ok, role, pending := a.board.ready()
		if !ok {
			http.Error(w, "waiting for the first sync of: "+strings.Join(pending, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok:", role)
	})
	if a.metrics != nil {
		mux.Handle(PathMetrics, a.metrics)
	}
	if a.webhook != nil && !a.webhookApart() {
		mux.Handle(PathWebhook, a.webhook)
	}
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status())
	})
	return mux
}

// WebhookHandler serves the webhook receiver alone, at /webhook (404
// elsewhere), for listen.webhook; nil when no webhook secret is
// configured.
func (a *Agent) WebhookHandler() http.Handler {
	if a.webhook == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle(PathWebhook, a.webhook)
	return mux
}

// webhookApart reports whether the webhook has a listener of its own.
func (a *Agent) webhookApart() bool {
	return a.webhookListener != nil || a.cfg.Listen.Webhook != ""
}

// serve starts the HTTP servers: Handler on listen.http and, when set,
// WebhookHandler on listen.webhook. errc receives the first server
// failure; shutdown stops both, letting requests in flight finish for up to
// shutdownGrace.
func (a *Agent) serve(ctx context.Context) (errc <-chan error, shutdown func(), err error) {
	type endpoint struct {
		ln      net.Listener
		field   string
		handler http.Handler
	}
	eps := []endpoint{{a.listener, "listen.http", a.Handler()}}
	if a.webhookApart() {
		h := a.WebhookHandler()
		if h == nil {
			// listen.webhook without a secret: nothing would be accepted,
			// so nothing listens.
			h = http.NotFoundHandler()
		}
		eps = append(eps, endpoint{a.webhookListener, "listen.webhook", h})
	}
	addrs := map[string]string{"listen.http": a.cfg.Listen.HTTP, "listen.webhook": a.cfg.Listen.Webhook}
	lim := a.limits
	if lim == (httpLimits{}) {
		lim = defaultHTTPLimits()
	}
	var servers []*http.Server
	failed := make(chan error, len(eps))
	stop := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		for _, srv := range servers {
			_ = srv.Shutdown(sctx)
		}
	}
	for _, ep := range eps {
		if ep.ln == nil {
			if ep.ln, err = net.Listen("tcp", addrs[ep.field]); err != nil {
				stop()
				return nil, nil, fmt.Errorf("%s: %w", ep.field, err)
			}
		}
		srv := &http.Server{Handler: ep.handler, ReadHeaderTimeout: lim.readHeader, ReadTimeout: lim.read,
			WriteTimeout: lim.write, IdleTimeout: lim.idle, MaxHeaderBytes: maxHeaderBytes,
			ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug)}
		servers = append(servers, srv)
		a.log.Info("serving", "field", ep.field, "address", ep.ln.Addr().String())
		go func(ln net.Listener, field string) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("%s: %w", field, err)
			}
		}(ep.ln, ep.field)
	}
	return failed, stop, nil
}
