package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/net/netutil"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// tlsServer is podguard's HTTPS server for the admission endpoints. It
// implements controller-runtime's webhook.Server so the manager runs it,
// but unlike the default server it bounds what a client can make it hold:
// connections (a listener limit), header size and time, idle time, and
// (in reviewHandler) body size, time and the memory of all bodies together.
type tlsServer struct {
	host string
	port int
	tls  *tls.Config
	// maxConns caps open connections; more wait in the kernel's backlog.
	maxConns int
	// shutdownTimeout bounds how long in-flight requests may finish.
	shutdownTimeout time.Duration
	log             logr.Logger

	mux     *http.ServeMux
	mu      sync.Mutex
	started bool
}

var _ crwebhook.Server = &tlsServer{}

// Header limits: the API server sends a few short headers.
const (
	maxHeaderBytes    = 32 << 10
	readHeaderTimeout = 5 * time.Second
	idleTimeout       = 90 * time.Second
)

func newTLSServer(host string, port int, cfg *tls.Config, maxConns int, shutdownTimeout time.Duration, log logr.Logger) *tlsServer {
	return &tlsServer{host: host, port: port, tls: cfg, maxConns: maxConns, shutdownTimeout: shutdownTimeout, log: log, mux: http.NewServeMux()}
}

// NeedLeaderElection: every replica serves.
func (s *tlsServer) NeedLeaderElection() bool { return false }

// Register serves hook at path.
func (s *tlsServer) Register(path string, hook http.Handler) { s.mux.Handle(path, hook) }

// WebhookMux returns the server's mux.
func (s *tlsServer) WebhookMux() *http.ServeMux { return s.mux }

// Start serves until ctx ends, then lets in-flight requests finish within
// the shutdown timeout.
func (s *tlsServer) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	if err != nil {
		return err
	}
	if s.maxConns > 0 {
		l = netutil.LimitListener(l, s.maxConns)
	}
	srv := &http.Server{
		Handler:           s.mux,
		TLSConfig:         s.tls,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		// Handlers set their own read deadline for the body; the answer
		// must be written within this.
		WriteTimeout: 30 * time.Second,
		// Connection-level errors (TLS handshakes of scanners, clients that
		// go away) are noise at info level: debug only.
		ErrorLog: log.New(debugWriter{s.log}, "", 0),
	}
	// HTTP/2 stays off: TLSConfig.NextProtos is http/1.1 and no
	// TLSNextProto is set up by ServeTLS for a config that excludes h2.
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.log.Error(err, "in-flight requests did not finish within the shutdown timeout", "timeout", s.shutdownTimeout.String())
		}
		close(done)
	}()
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	s.log.Info("serving webhook", "address", l.Addr().String(), "maxConnections", s.maxConns)
	if err := srv.Serve(tls.NewListener(l, s.tls)); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}

// debugWriter passes net/http's error log lines to logr at debug level.
type debugWriter struct{ log logr.Logger }

func (w debugWriter) Write(p []byte) (int, error) {
	w.log.V(1).Info("connection error", "error", strings.TrimSpace(string(p)))
	return len(p), nil
}

// StartedChecker is healthy once the server answers TLS.
func (s *tlsServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if !started {
			return errors.New("webhook server has not been started yet")
		}
		host := s.host
		if host == "" {
			host = "127.0.0.1"
		}
		d := &net.Dialer{Timeout: 5 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort(host, strconv.Itoa(s.port)), &tls.Config{InsecureSkipVerify: true}) // a reachability check of our own listener
		if err != nil {
			return fmt.Errorf("webhook server is not reachable: %w", err)
		}
		return conn.Close()
	}
}
