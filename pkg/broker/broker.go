// Package broker builds the Watermill publisher and subscribers of the
// configured backend. Services ask it for a message.Publisher or a
// message.Subscriber for their consumer group and never see which broker is
// behind them.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/config"
)

// NewPublisher connects to the configured backend, retrying until
// cfg's connect timeout, and makes sure every consumer group in cfg.Groups
// will receive what it publishes from now on, even groups with no running
// instance yet.
func NewPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	switch cfg.Backend {
	case "amqp":
		return newAMQPPublisher(ctx, cfg, logger)
	case "nats":
		return newNATSPublisher(ctx, cfg, logger)
	case "redis":
		return newRedisPublisher(ctx, cfg, logger)
	case "postgres":
		return newPostgresPublisher(ctx, cfg, logger)
	case "gochannel":
		return newGoChannelPublisher(ctx, cfg, logger)
	}

	return nil, unknownBackend(cfg.Backend)
}

// NewSubscriber connects to the configured backend as a member of group:
// instances that share a group compete for events, and each group receives
// every event. Closing the subscriber lets events already handed to a
// handler finish (up to cfg.Consumer.ShutdownTimeout) before it disconnects.
func NewSubscriber(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Subscriber, error) {
	var (
		sub message.Subscriber
		err error
	)
	switch cfg.Backend {
	case "amqp":
		sub, err = newAMQPSubscriber(ctx, cfg, group, logger)
	case "nats":
		sub, err = newNATSSubscriber(ctx, cfg, group, logger)
	case "redis":
		sub, err = newRedisSubscriber(ctx, cfg, group, logger)
	case "postgres":
		sub, err = newPostgresSubscriber(ctx, cfg, group, logger)
	case "gochannel":
		sub, err = newGoChannelSubscriber(ctx, cfg, group, logger)
	default:
		err = unknownBackend(cfg.Backend)
	}
	if err != nil {
		return nil, err
	}

	return newDrainingSubscriber(sub, cfg.Consumer.ShutdownTimeout, logger), nil
}

func unknownBackend(name string) error {
	return fmt.Errorf("backend %q is not supported (valid: %v)", name, config.Backends)
}

// connectWithRetry calls connect until it succeeds, ctx ends or timeout
// passes, backing off between attempts and logging each failure once. An
// error that says the broker refused the login or access (see refused)
// ends it at once, and so does ctx ending, reported as ErrInterrupted.
func connectWithRetry[T any](
	ctx context.Context,
	timeout time.Duration,
	logger *slog.Logger,
	connect func() (T, error),
) (T, error) {
	var zero T
	timeoutCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		v, err := connect()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%w, after %d attempts: %w", ErrInterrupted, attempt, err)
		}
		if refusal := refused(err); refusal != nil {
			return zero, refusal
		}

		logger.Warn("broker not reachable, retrying", "attempt", attempt, "retry_in", wait, "error", err)
		select {
		case <-timeoutCtx.Done():
			if ctx.Err() != nil {
				return zero, fmt.Errorf("%w, after %d attempts: %w", ErrInterrupted, attempt, err)
			}

			return zero, fmt.Errorf("gave up after %d attempts in %s: %w", attempt, timeout, err)
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}
