package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Endpoints of every service; the publisher serves them next to its API,
// consumers on their admin server.
const (
	PathMetrics = "/metrics"
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
)

// AdminMux routes the operator endpoints: metrics, liveness and readiness.
func AdminMux(reg *Registry, ready *Readiness) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET "+PathMetrics, reg.Handler())
	mux.HandleFunc("GET "+PathHealth, Alive)
	mux.Handle("GET "+PathReady, ready)

	return mux
}

// AdminServer is the small HTTP server a consumer instance serves the
// operator endpoints on.
type AdminServer struct {
	srv     *http.Server
	ln      net.Listener
	served  chan error
	timeout time.Duration
}

// StartAdmin listens on addr (port 0 picks a free port) and serves h there
// until Shutdown. It logs the address it listens on.
func StartAdmin(addr string, h http.Handler, logger *slog.Logger) (*AdminServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for admin HTTP on %s: %w", addr, err)
	}

	s := &AdminServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
		},
		ln:      ln,
		served:  make(chan error, 1),
		timeout: 5 * time.Second,
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	logger.Info("serving admin HTTP", "address", s.Addr(),
		"endpoints", []string{PathMetrics, PathHealth, PathReady})

	return s, nil
}

// Addr is the address the server listens on, with the port it got.
func (s *AdminServer) Addr() string {
	return s.ln.Addr().String()
}

// Shutdown stops the server, letting requests in progress finish for a few seconds.
func (s *AdminServer) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutting down admin HTTP: %w", err)
	}
	if err := <-s.served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving admin HTTP: %w", err)
	}

	return nil
}
