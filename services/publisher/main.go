// Command publisher is the HTTP edge: POST /stuff turns the request body into
// one event, published through Watermill to every consumer group.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/service"
)

func main() {
	service.Main("publisher", run)
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	pub, err := broker.NewPublisher(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := pub.Close(); err != nil {
			logger.Error("closing publisher", "error", err)
		}
	}()

	// Metrics, /healthz and /readyz next to the API; publishes are timed.
	ops, timedPub, err := newOps(cfg, pub, logger)
	if err != nil {
		return err
	}
	e := newServer(cfg, timedPub, logger)
	ops.mount(e)

	ln, err := net.Listen("tcp", cfg.Publisher.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Publisher.Listen, err)
	}

	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Publisher.PublishTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("accepting requests", "address", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}

	// Stop taking requests and let those in flight get their confirm; the
	// deferred Close then disconnects from the broker.
	logger.Info("shutting down", "timeout", cfg.Publisher.ShutdownTimeout)
	ops.stopping.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.Publisher.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down HTTP: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}

	return nil
}
