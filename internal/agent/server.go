package agent

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// HTTP paths the agent serves.
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathMetrics = "/metrics"
	PathWebhook = "/webhook"
	PathStatus  = "/api/status"
)

// Handler serves the agent's HTTP endpoints:
//
//	/healthz     200 while the process serves (liveness)
//	/readyz      200 for a standby; for the leader, once the first sync of
//	             every environment was attempted; 503 with the pending ones before
//	/metrics     the metrics handler given in Options (404 without one)
//	/webhook     push webhooks (GitHub, GitLab, Gitea, generic), signed with
//	             the webhook secret (404 when none is configured)
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
	if a.webhook != nil {
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
