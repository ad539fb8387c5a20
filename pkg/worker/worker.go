// Package worker runs a consumer service: one Watermill router with one
// handler, subscribed to the configured topic as one consumer group, so that
// the instances of a service type share its events and every type gets them all.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
	"github.com/millrace/millrace/pkg/observe"
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
	if !slices.Contains(cfg.Groups, group) {
		logger.Warn("this consumer group is not listed in groups: the publisher does not create its queue, "+
			"so events published while none of its instances runs are not kept for it", "groups", cfg.Groups)
	}

	// Metrics, /healthz and /readyz on the admin port, from before the
	// broker connects until the router has drained.
	obs, err := startObserver(cfg, group, logger)
	if err != nil {
		return err
	}
	defer obs.stop()

	sub, err := broker.NewSubscriber(ctx, cfg, group, logger)
	if err != nil {
		return err
	}

	outer, closeStack, err := middlewareStack(ctx, cfg, group, obs, logger)
	if err != nil {
		return err
	}
	// After the router has drained: its handlers publish through these.
	defer closeStack()

	router, err := newRouter(cfg, logger, outer, countAttempts)
	if err != nil {
		return err
	}
	obs.watch(router, sub)
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

// middlewareStack builds the middleware that wraps the retry, outermost
// first, with the publishers it needs (poison queue, audit trail) where the
// backend has them; closeStack closes those publishers.
func middlewareStack(
	ctx context.Context,
	cfg config.Config,
	group string,
	obs *observer,
	logger *slog.Logger,
) (outer []message.HandlerMiddleware, closeStack func(), err error) {
	var closers []func()
	closeStack = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}

	outer = []message.HandlerMiddleware{
		// Event metrics, and the one log line of an event's final outcome.
		obs.middleware(),
		// Redeliveries are logged, so at-least-once is visible.
		logRedelivery(logger),
	}
	var shared completionLog
	if url := cfg.Consumer.CompletedIDsURL; url != "" {
		completions, err := newRedisCompletions(ctx, url, cfg.Topic, group)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, func() { closeLogged(completions, "closing completed-events Redis", logger) })
		shared = completions
	}
	// An event completed whose ack the broker lost is not done twice: by this
	// instance, or by any instance of the group when the log is shared.
	outer = append(outer, skipCompleted(newCompletedIDs(completedIDsKept), shared, logger))
	instance := strconv.Itoa(logging.Instance())

	// Records of handled and parked events, for the live page and the audit.
	auditPub, err := broker.NewAuditPublisher(ctx, cfg, logger)
	if err != nil {
		closeStack()

		return nil, nil, err
	}
	if auditPub != nil {
		closers = append(closers, func() { closeLogged(auditPub, "closing audit publisher", logger) })
	}

	poison, err := broker.NewPoisonPublisher(ctx, cfg, group, logger)
	switch {
	case errors.Is(err, broker.ErrPoisonUnsupported):
		logger.Warn("no poison queue on this backend: an event that keeps failing is redelivered until it succeeds",
			"backend", cfg.Backend)
	case err != nil:
		closeStack()

		return nil, nil, err
	default:
		closers = append(closers, func() { closeLogged(poison, "closing poison publisher", logger) })
		if auditPub != nil {
			outer = append(outer, AuditParked(auditPub, cfg.AuditTopic(), group, instance, logger))
		}
		// What still fails after the retry is parked, and the queue moves on.
		outer = append(outer, parkPoison(poison, broker.PoisonQueue(cfg.Topic, group), group, logger))
	}

	if auditPub != nil {
		// Inside the poison queue: only an event that was handled is recorded.
		outer = append(outer, AuditTrail(auditPub, cfg.AuditTopic(), group, instance, logger))
	}

	return outer, closeStack, nil
}

// completedIDsKept is how many completed event IDs an instance remembers.
const completedIDsKept = 10000

// NewRouter returns a router with the middleware every consumer service uses.
// outer middleware runs first, around the retries: it sees an event's final
// outcome only.
func NewRouter(cfg config.Config, logger *slog.Logger, outer ...message.HandlerMiddleware) (*message.Router, error) {
	return newRouter(cfg, logger, outer)
}

// newRouter is NewRouter with inner middleware between the retry and the
// handler.
func newRouter(
	cfg config.Config,
	logger *slog.Logger,
	outer []message.HandlerMiddleware,
	inner ...message.HandlerMiddleware,
) (*message.Router, error) {
	router, err := message.NewRouter(message.RouterConfig{
		// The subscriber already waits for in-flight events up to this
		// timeout; the router must not give up on them first.
		CloseTimeout: cfg.Consumer.ShutdownTimeout + cfg.Consumer.ShutdownTimeout/10,
	}, logging.WatermillRouter(logger))
	if err != nil {
		return nil, fmt.Errorf("creating router: %w", err)
	}

	router.AddMiddleware(outer...)
	router.AddMiddleware(
		// Events a handler publishes carry the correlation ID of the event
		// that caused them, so one request can be followed across services.
		middleware.CorrelationID,
		// Transient failures are retried in place with exponential backoff
		// before the event goes back to the broker for redelivery.
		middleware.Retry{
			MaxRetries:      cfg.Consumer.Retry.MaxRetries,
			InitialInterval: cfg.Consumer.Retry.InitialInterval,
			MaxInterval:     cfg.Consumer.Retry.MaxInterval,
			Multiplier:      2,
		}.Middleware,
		// Counts attempts and logs each failure that is retried; the final
		// failure is logged once by the outer event middleware.
		observe.Attempts,
		// A panicking handler becomes an error, which the retry above sees,
		// rather than a crash of the instance.
		middleware.Recoverer,
	)
	router.AddMiddleware(inner...)

	return router, nil
}
