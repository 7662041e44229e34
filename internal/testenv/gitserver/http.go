package gitserver

import (
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// httpBackend is where Debian and most distributions install git's CGI
// program; GIT_EXEC_PATH is asked first so other layouts work too.
const httpBackend = "/usr/lib/git-core/git-http-backend"

func (s *Server) startHTTP(t testing.TB, opts Options) {
	t.Helper()
	backend := filepath.Join(gitExecPath(t, s.gitPath), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		backend = httpBackend
	}
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("gitserver: git-http-backend not found: %v", err)
	}
	logDir := t.TempDir()
	stderr, err := os.Create(filepath.Join(logDir, "http-backend.log"))
	if err != nil {
		t.Fatalf("gitserver: %v", err)
	}
	h := &httpHandler{
		srv:      s,
		backend:  backend,
		home:     t.TempDir(),
		stderr:   stderr,
		anonRead: opts.AnonymousRead,
	}
	ts := httptest.NewUnstartedServer(h)
	// The server's error log would print the TLS handshake failures that
	// tests provoke on purpose (wrong CA): keep them in the log file.
	ts.Config.ErrorLog = log.New(stderr, "http: ", log.LstdFlags)
	if opts.TLS {
		ts.StartTLS()
		s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	} else {
		ts.Start()
	}
	s.httpURL = ts.URL
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		_ = stderr.Close()
		if t.Failed() {
			t.Logf("gitserver: git-http-backend log: %s", stderr.Name())
		}
	})
}

// CABundle returns the PEM certificate that signs the HTTPS server, or nil
// for a plain-HTTP server.
func (s *Server) CABundle() []byte { return s.caPEM }

// WriteCABundle writes CABundle to a file in a temporary folder and returns
// its path.
func (s *Server) WriteCABundle(t testing.TB) string {
	t.Helper()
	if s.caPEM == nil {
		t.Fatalf("gitserver: WriteCABundle on a plain-HTTP server")
	}
	return writeFile(t, "ca.pem", s.caPEM, 0o644)
}

type httpHandler struct {
	srv      *Server
	backend  string
	home     string
	stderr   io.Writer
	anonRead bool
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	repo, kind, ok := h.classify(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !h.authorised(r, kind) {
		h.srv.countDenied(repo)
		w.Header().Set("WWW-Authenticate", `Basic realm="baton-test"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if kind == UploadPack && isLsRefs(r) {
		kind = Advertise
	}
	h.srv.count(repo, kind)

	// A handler per request: REMOTE_USER differs per request, and git
	// http-backend enables receive-pack only when REMOTE_USER is set.
	user, _, _ := r.BasicAuth()
	cg := &cgi.Handler{
		Path: h.backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + h.srv.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"HOME=" + h.home,
			"REMOTE_USER=" + user,
		},
		Stderr: h.stderr,
	}
	cg.ServeHTTP(w, r)
}

// classify finds the repository and the kind of a smart-HTTP request. The
// dumb protocol is not served.
func (h *httpHandler) classify(r *http.Request) (repo string, kind Kind, ok bool) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/info/refs"):
		repo = strings.TrimSuffix(p, "/info/refs")
		switch r.URL.Query().Get("service") {
		case "git-upload-pack":
			return repo, Advertise, true
		case "git-receive-pack":
			return repo, ReceivePack, true
		}
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/git-upload-pack"):
		return strings.TrimSuffix(p, "/git-upload-pack"), UploadPack, true
	case r.Method == http.MethodPost && strings.HasSuffix(p, "/git-receive-pack"):
		return strings.TrimSuffix(p, "/git-receive-pack"), ReceivePack, true
	}
	return "", 0, false
}

func (h *httpHandler) authorised(r *http.Request, kind Kind) bool {
	if h.srv.failAuth.Load() {
		return false
	}
	user, pass, has := r.BasicAuth()
	if !has {
		return h.anonRead && kind != ReceivePack
	}
	return user == h.srv.User && pass == h.srv.Token
}

// isLsRefs tells a protocol-v2 ls-refs command (sent by the git CLI as a POST
// to git-upload-pack) from a fetch, so that it counts as an advertisement.
// It restores the body for the backend.
func isLsRefs(r *http.Request) bool {
	if !strings.Contains(r.Header.Get("Git-Protocol"), "version=2") {
		return false
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	head := body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return false
		}
		head, _ = io.ReadAll(io.LimitReader(zr, 64))
	}
	// The first pkt-line is "command=<name>\n" after a 4-byte length.
	return len(head) > 4 && bytes.HasPrefix(head[4:], []byte("command=ls-refs"))
}
