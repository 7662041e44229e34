package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// class sorts the requests the proxy sees.
type class int

const (
	classFetch class = iota // git-upload-pack: ls-remote and fetch
	classPush               // git-receive-pack
	classPulls              // forge API: opening a pull request (POST .../pulls)
	classAPI                // every other forge API call
	numClasses
)

func (c class) String() string {
	return [...]string{"fetch", "push", "pulls", "api"}[c]
}

func classify(r *http.Request) class {
	switch {
	case strings.Contains(r.URL.Path, "git-upload-pack") || r.URL.Query().Get("service") == "git-upload-pack":
		return classFetch
	case strings.Contains(r.URL.Path, "git-receive-pack") || r.URL.Query().Get("service") == "git-receive-pack":
		return classPush
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/pulls"):
		return classPulls
	}
	return classAPI
}

// mode is what the proxy does to a class of requests.
type mode int

const (
	pass    mode = iota
	fail500      // answer 500 without forwarding
	hang         // answer nothing until the client gives up or the fault heals
	drop         // cut the connection mid-request or mid-response
	hold         // park the request until the test releases it
)

func (m mode) String() string {
	return [...]string{"pass", "500", "hang", "drop", "hold"}[m]
}

// held is a parked request; the test decides its fate.
type held struct {
	class   class
	release chan bool // true forwards it, false drops it
}

// faultProxy sits in front of Gitea (git over HTTP and the API on one
// port): the agents reach the forge only through it, so the test can fail,
// stall, cut or hold their requests by class.
type faultProxy struct {
	t      testing.TB
	target *url.URL
	rp     *httputil.ReverseProxy
	srv    *httptest.Server

	mu    sync.Mutex // guards modes and heal
	modes [numClasses]mode
	// heal is closed when the faults are cleared: hanging requests end.
	heal chan struct{}

	held   chan held
	counts [numClasses]atomic.Int64
	faults [numClasses]atomic.Int64
}

func startProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, target: u, rp: httputil.NewSingleHostReverseProxy(u), heal: make(chan struct{}),
		held: make(chan held, 16)}
	p.rp.ErrorLog = nil
	p.rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.clear()
		p.srv.CloseClientConnections()
		p.srv.Close()
	})
	return p
}

// URL is the proxy's root URL, standing for Gitea's.
func (p *faultProxy) URL() string { return p.srv.URL + "/" }

// set makes the proxy treat the classes in mode until clear.
func (p *faultProxy) set(m mode, classes ...class) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range classes {
		p.modes[c] = m
	}
}

// clear heals every fault: requests pass, hanging ones end.
func (p *faultProxy) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.modes = [numClasses]mode{}
	close(p.heal)
	p.heal = make(chan struct{})
	for {
		select {
		case h := <-p.held:
			h.release <- true
		default:
			return
		}
	}
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	c := classify(r)
	p.counts[c].Add(1)
	p.mu.Lock()
	m, heal := p.modes[c], p.heal
	p.mu.Unlock()
	if m != pass {
		p.faults[c].Add(1)
	}
	switch m {
	case fail500:
		http.Error(w, "injected failure", http.StatusInternalServerError)
	case hang:
		select {
		case <-r.Context().Done():
		case <-heal:
			http.Error(w, "injected stall", http.StatusGatewayTimeout)
		}
	case drop:
		p.cut(w, r)
	case hold:
		if r.Method != http.MethodPost {
			// Only the push itself (the pack) or the creation is held.
			p.forward(w, r)
			return
		}
		h := held{class: c, release: make(chan bool, 1)}
		select {
		case p.held <- h:
		default:
			http.Error(w, "too many held requests", http.StatusServiceUnavailable)
			return
		}
		select {
		case forward := <-h.release:
			if forward {
				p.forward(w, r)
			} else {
				p.hijackClose(w)
			}
		case <-r.Context().Done():
		}
	default:
		p.forward(w, r)
	}
}

// forward sends the request on; the client going away (a killed agent)
// does not cancel it: what it asked for happens, as on a real network.
func (p *faultProxy) forward(w http.ResponseWriter, r *http.Request) {
	p.rp.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
}

// cut drops the connection in the middle: a request with a body is cut
// while it is sent (the server never sees it), or forwarded and its answer
// cut after a part of it (it happened, but the client cannot tell); a
// request without one gets part of its answer.
func (p *faultProxy) cut(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && r.ContentLength != 0 && time.Now().UnixNano()%2 == 0 {
		_, _ = io.CopyN(io.Discard, r.Body, 512)
		p.hijackClose(w)
		return
	}
	out := r.Clone(context.WithoutCancel(r.Context()))
	out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = p.target.Scheme, p.target.Host, p.target.Host, ""
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		p.hijackClose(w)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.CopyN(w, resp.Body, 64)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	p.hijackClose(w)
}

func (p *faultProxy) hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not a clean close
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// awaitHeld waits for a request parked in hold mode.
func (p *faultProxy) awaitHeld(ctx context.Context) (held, bool) {
	select {
	case h := <-p.held:
		return h, true
	case <-ctx.Done():
		return held{}, false
	}
}
