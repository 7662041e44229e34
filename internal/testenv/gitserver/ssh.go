package gitserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshServer serves git over SSH: it accepts public-key authentication for
// the server's user and runs git-upload-pack or git-receive-pack for the
// repository that an exec request names.
type sshServer struct {
	srv      *Server
	addr     string
	hostKey  ssh.Signer
	execPath string
	home     string
	ln       net.Listener
	ctx      context.Context // cancelled on shutdown: kills running git processes
	cancel   context.CancelFunc
	wg       sync.WaitGroup // one per connection and per channel

	mu         sync.Mutex // guards authorized and conns
	authorized map[string]bool
	conns      map[net.Conn]struct{}
}

func startSSH(t testing.TB, srv *Server) *sshServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("gitserver: ssh listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sshServer{
		srv:        srv,
		addr:       ln.Addr().String(),
		hostKey:    newHostKey(t),
		execPath:   gitExecPath(t, srv.gitPath),
		home:       t.TempDir(),
		ln:         ln,
		ctx:        ctx,
		cancel:     cancel,
		authorized: map[string]bool{},
		conns:      map[net.Conn]struct{}{},
	}
	s.wg.Add(1)
	go s.acceptLoop()
	t.Cleanup(s.close)
	return s
}

func (s *sshServer) authorize(pub ssh.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authorized[string(pub.Marshal())] = true
}

func (s *sshServer) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.srv.failAuth.Load() {
				return nil, errors.New("authentication disabled by the test")
			}
			s.mu.Lock()
			ok := s.authorized[string(key.Marshal())]
			s.mu.Unlock()
			if !ok || meta.User() != s.srv.User {
				return nil, fmt.Errorf("key not authorized for %q", meta.User())
			}
			return &ssh.Permissions{}, nil
		},
	}
	cfg.AddHostKey(s.hostKey)
	return cfg
}

func (s *sshServer) close() {
	s.cancel()
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *sshServer) acceptLoop() {
	defer s.wg.Done()
	cfg := s.config()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return // listener closed on shutdown
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn, cfg)
	}
}

func (s *sshServer) serveConn(conn net.Conn, cfg *ssh.ServerConfig) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		_ = conn.Close()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return // failed handshake or auth: the client sees why
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go s.serveSession(ch, chReqs)
	}
}

// serveSession waits for one exec request and runs it. Environment requests
// are refused, so clients speak protocol v0 (git asks for v2 through
// GIT_PROTOCOL) and the request counting stays simple.
func (s *sshServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer s.wg.Done()
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			continue
		}
		service, repo, err := s.parseCommand(payload.Command)
		if err != nil {
			_ = req.Reply(true, nil)
			fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
			sendExitStatus(ch, 128)
			return
		}
		_ = req.Reply(true, nil)
		sendExitStatus(ch, s.run(ch, service, repo))
		return
	}
}

// parseCommand reads "git-upload-pack '/name.git'" (also "git upload-pack")
// and returns the service and the repository folder under the root.
func (s *sshServer) parseCommand(command string) (service, repo string, err error) {
	command = strings.Replace(command, "git ", "git-", 1)
	service, arg, ok := strings.Cut(command, " ")
	if !ok || (service != "git-upload-pack" && service != "git-receive-pack") {
		return "", "", fmt.Errorf("unsupported command %q", command)
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '\'' && arg[len(arg)-1] == '\'' {
		arg = strings.ReplaceAll(arg[1:len(arg)-1], `'\''`, `'`)
	}
	clean := path.Clean("/" + arg)
	if clean == "/" || strings.Contains(arg, "..") {
		return "", "", fmt.Errorf("invalid repository path %q", arg)
	}
	return service, strings.TrimPrefix(clean, "/"), nil
}

// run executes the service for the repository with the channel as its
// standard streams and returns its exit status.
func (s *sshServer) run(ch ssh.Channel, service, repo string) uint32 {
	dir := filepath.Join(s.srv.Root, filepath.FromSlash(repo))
	var stdin io.Reader = ch
	if service == "git-upload-pack" {
		// Counted before git runs, so a client never sees its answer before
		// the count exists.
		s.srv.count(repo, Advertise)
		stdin = &wantDetector{r: ch, onWant: func() { s.srv.count(repo, UploadPack) }}
	} else {
		s.srv.count(repo, ReceivePack)
	}
	cmd := exec.CommandContext(s.ctx, filepath.Join(s.execPath, service), dir)
	cmd.Env = isolatedEnv(s.home)
	cmd.Stdin = stdin
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	// The stdin copy blocks until the client closes its side; a client that
	// never does must not hold the shutdown forever.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return uint32(exit.ExitCode())
	default:
		fmt.Fprintf(ch.Stderr(), "fatal: %v\n", err)
		return 128
	}
}

func sendExitStatus(ch ssh.Channel, code uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], code)
	_, _ = ch.SendRequest("exit-status", false, b[:])
}

// wantDetector passes the client's input to git-upload-pack and calls onWant
// once if the client asks for objects: after the advertisement, a client
// that only lists references (ls-remote) sends a flush packet "0000", one
// that fetches sends "want" lines.
type wantDetector struct {
	r      io.Reader
	onWant func()
	seen   []byte
	done   bool
}

func (d *wantDetector) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if !d.done && n > 0 {
		d.seen = append(d.seen, p[:n]...)
		if len(d.seen) >= 4 {
			d.done = true
			if string(d.seen[:4]) != "0000" {
				d.onWant()
			}
			d.seen = nil
		}
	}
	return n, err
}
