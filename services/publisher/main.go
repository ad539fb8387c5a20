// Command publisher is the HTTP edge: POST /stuff turns the request body into
// one event, published through Watermill to every consumer group. It also
// serves the live page at /, which shows each event reaching the consumers.
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

	// Metrics, /healthz and /readyz next to the API; publishes are timed.
	ops, timedPub, err := newOps(cfg, pub, logger)
	if err != nil {
		_ = pub.Close()

		return err
	}
	pub = timedPub
	// Every confirmed event is also recorded on the audit topic, for the
	// live page and the delivery audit. Closing it closes what it wraps.
	records, err := broker.NewAuditPublisher(ctx, cfg, logger)
	if err != nil {
		_ = pub.Close()

		return err
	}
	if records != nil {
		pub = withAuditTrail(pub, records, cfg, logger)
	}
	defer func() {
		if err := pub.Close(); err != nil {
			logger.Error("closing publisher", "error", err)
		}
	}()

	// The live page at / follows the audit trail; see live.go.
	feed, err := startLiveFeed(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := feed.Close(); err != nil {
			logger.Error("closing live feed", "error", err)
		}
	}()

	ln, err := net.Listen("tcp", cfg.Publisher.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Publisher.Listen, err)
	}

	handler := newServer(cfg, pub, logger)
	ops.mount(handler)
	feed.mount(handler)

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Publisher.PublishTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	// Shutdown waits for open requests: end the page's streams first.
	srv.RegisterOnShutdown(feed.endStreams)

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
