// Package worker runs a consumer service: one Watermill router with one
// handler, subscribed to the configured topic as one consumer group, so that
// the instances of a service type share its events and every type gets them all.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// Run handles the configured topic's events with handle, as a member of
// group, until ctx ends; then it lets the event in flight finish and returns.
func Run(
	ctx context.Context,
	cfg config.Config,
	group string,
	handle message.NoPublishHandlerFunc,
	logger *slog.Logger,
) error {
	logger = logger.With("group", group)

	sub, err := broker.NewSubscriber(ctx, cfg, group, logger)
	if err != nil {
		return err
	}

	// Records of handled events go to the audit topic through a publisher of
	// their own, closed after the router has drained.
	auditPub, err := broker.NewPublisher(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer closeLogged(auditPub, "closing audit publisher", logger)
	trail := AuditTrail(auditPub, cfg.AuditTopic(), group, strconv.Itoa(logging.Instance()), logger)

	router, err := NewRouter(cfg, logger, trail)
	if err != nil {
		return err
	}
	router.AddConsumerHandler(group, cfg.Topic, sub, handle)

	// The router runs on its own context: cancelling it would abandon the
	// event in flight. ctx ending closes the router instead, which drains.
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()

	select {
	case <-router.Running():
		logger.Info("handling events", "topic", cfg.Topic)
	case err := <-runErr:
		return fmt.Errorf("starting router: %w", err)
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-runErr:
		// All handlers stopped by themselves: the subscription ended.
		return errors.Join(errors.New("router stopped unexpectedly"), err)
	}

	closeErr := router.Close()
	if err := <-runErr; err != nil {
		closeErr = errors.Join(closeErr, err)
	}

	return closeErr
}

// NewRouter returns a router with the middleware every consumer service uses.
// outer middleware runs first, around the retries: it sees an event's final
// outcome only.
func NewRouter(cfg config.Config, logger *slog.Logger, outer ...message.HandlerMiddleware) (*message.Router, error) {
	router, err := message.NewRouter(message.RouterConfig{
		// The subscriber already waits for in-flight events up to this
		// timeout; the router must not give up on them first.
		CloseTimeout: cfg.Consumer.ShutdownTimeout + cfg.Consumer.ShutdownTimeout/10,
	}, logging.Watermill(logger))
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}
	router.AddMiddleware(outer...)

	router.AddMiddleware(
		// Transient failures are retried in place with exponential backoff
		// before the event goes back to the broker for redelivery.
		middleware.Retry{
			MaxRetries:      cfg.Consumer.Retry.MaxRetries,
			InitialInterval: cfg.Consumer.Retry.InitialInterval,
			MaxInterval:     cfg.Consumer.Retry.MaxInterval,
			Multiplier:      2,
			Logger:          logging.Watermill(logger),
		}.Middleware,
		// A panicking handler becomes an error, which the retry above sees,
		// rather than a crash of the instance.
		middleware.Recoverer,
	)

	return router, nil
}
