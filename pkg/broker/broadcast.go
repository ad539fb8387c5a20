package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// ErrBroadcastUnsupported is returned by NewBroadcastSubscriber for a backend
// that has no broadcast subscription yet.
var ErrBroadcastUnsupported = errors.New("broadcast subscription is not supported on this backend")

// NewBroadcastSubscriber connects to the configured backend as a viewer:
// every viewer receives every message published to the topics it subscribes
// to from then on, and leaves nothing behind on the broker when it stops.
// Nothing is kept for a viewer that is not running.
//
// On AMQP each Subscribe declares a queue of its own, "viewer.<topic>.<id>",
// non-durable, exclusive to this connection and deleted with it, bound to
// the topic's exchange.
//
// Warning: a viewer's queue goes with its connection, so after the broker
// connection is lost and re-established the subscription does not resume;
// restart the viewer. Other backends return ErrBroadcastUnsupported.
func NewBroadcastSubscriber(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Subscriber, error) {
	switch cfg.Backend {
	case "amqp":
		return newAMQPBroadcastSubscriber(ctx, cfg, uuid.NewString()[:8], logger)
	}

	return nil, fmt.Errorf("backend %q: %w", cfg.Backend, ErrBroadcastUnsupported)
}

// NewBroadcastPublisher connects a publisher for what viewers (see
// NewBroadcastSubscriber) read from topic: it declares the topic's exchange,
// returns once the broker has confirmed each message, and, unlike
// NewPublisher's, succeeds when no viewer is there to take it.
// Other backends return ErrBroadcastUnsupported.
func NewBroadcastPublisher(ctx context.Context, cfg config.Config, topic string, logger *slog.Logger) (message.Publisher, error) {
	if cfg.Backend != "amqp" {
		return nil, fmt.Errorf("backend %q: %w", cfg.Backend, ErrBroadcastUnsupported)
	}
	logger = logger.With("backend", "amqp", "broker_url", config.RedactURL(cfg.AMQP.URL))
	c := amqpConfig(cfg, "")

	pub := newConfirmPublisher(cfg.AMQP.URL, 1, func(ch *amqp091.Channel) error {
		exchange := c.Exchange.GenerateName(topic)
		if err := ch.ExchangeDeclare(exchange, c.Exchange.Type, c.Exchange.Durable, false, false, false, nil); err != nil {
			return fmt.Errorf("declaring exchange %s: %w", exchange, err)
		}

		return nil
	}, toFanoutExchange, logger)
	pub.bestEffortRouting = true

	if err := pub.connectWithRetry(ctx, cfg.AMQP.ConnectTimeout); err != nil {
		return nil, err
	}

	return pub, nil
}

// NewAuditPublisher connects the publisher of the audit trail (records for
// the live page and the delivery audit on cfg.AuditTopic()), or returns nil
// and logs why there is none: the trail is off (audit.enabled), or the
// backend has no broadcast.
func NewAuditPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	if !cfg.Audit.Enabled {
		logger.Info("audit trail off (audit.enabled): no records for the live page and the audit")

		return nil, nil
	}
	pub, err := NewBroadcastPublisher(ctx, cfg, cfg.AuditTopic(), logger)
	if errors.Is(err, ErrBroadcastUnsupported) {
		logger.Info("no audit records on this backend: the live page and the audit need amqp", "backend", cfg.Backend)

		return nil, nil
	}

	return pub, err
}

// BroadcastQueuePrefix starts the name of every viewer queue on AMQP.
const BroadcastQueuePrefix = "viewer."

// BroadcastQueueName is the AMQP queue of the viewer id on topic.
func BroadcastQueueName(topic, id string) string {
	return BroadcastQueuePrefix + topic + "." + id
}

func newAMQPBroadcastSubscriber(ctx context.Context, cfg config.Config, id string, logger *slog.Logger) (*amqp.Subscriber, error) {
	logger = logger.With("backend", "amqp", "broker_url", config.RedactURL(cfg.AMQP.URL))
	// The exchange is the same durable fanout the publishers declare; only
	// the queue differs from a consumer group's.
	c := amqpConfig(cfg, "")
	c.Queue = amqp.QueueConfig{
		GenerateName: func(topic string) string { return BroadcastQueueName(topic, id) },
		AutoDelete:   true,
		Exclusive:    true,
	}
	// A viewer reads a stream: let the broker send ahead of it.
	c.Consume.Qos.PrefetchCount = 64

	sub, err := connectWithRetry(ctx, cfg.AMQP.ConnectTimeout, logger, func() (*amqp.Subscriber, error) {
		return amqp.NewSubscriber(c, logging.Watermill(logger))
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to AMQP broker %s: %w", config.RedactURL(cfg.AMQP.URL), err)
	}

	return sub, nil
}
