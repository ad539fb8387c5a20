package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// On AMQP a topic is a durable fanout exchange of the same name, and each
// consumer group a durable queue "<topic>.<group>" bound to it: instances of
// one group share (compete on) that queue, and every group's queue gets a
// copy of every event. Watermill's durable preset would name the queue after
// the topic alone and put every group on one queue, so the name is set here.

// QueueName is the queue of group on topic.
func QueueName(topic, group string) string {
	return topic + "." + group
}

func amqpConfig(cfg config.Config, group string) amqp.Config {
	c := amqp.NewDurablePubSubConfig(cfg.AMQP.URL, func(topic string) string {
		return QueueName(topic, group)
	})
	c.Marshaler = marshaler{}
	c.Publish.ConfirmDelivery = true
	c.Publish.ChannelPoolSize = cfg.AMQP.PublishChannels
	c.Consume.Qos.PrefetchCount = cfg.AMQP.Prefetch
	c.Queue.Arguments = queueArguments(cfg.AMQP.QueueType)
	// Reconnect after a broker restart within seconds, not the preset's
	// backoff of up to a minute.
	c.Connection.Reconnect = amqp.DefaultReconnectConfig()
	c.Connection.Reconnect.BackoffMaxInterval = 5 * time.Second

	return c
}

func newAMQPPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	logger = logger.With("backend", "amqp", "broker_url", config.RedactURL(cfg.AMQP.URL))
	c := amqpConfig(cfg, "")

	pub := newConfirmPublisher(cfg.AMQP.URL, cfg.AMQP.PublishChannels, func(ch *amqp091.Channel) error {
		return declareAMQPTopology(ch, c, cfg.Topic, cfg.Groups)
	}, toFanoutExchange, logger)

	if err := pub.connectWithRetry(ctx, cfg.AMQP.ConnectTimeout); err != nil {
		return nil, err
	}
	pub.keepTopology(topologyCheckInterval, func(conn *amqp091.Connection) error {
		return redeclareMissingQueues(conn, c, cfg.Topic, cfg.Groups, logger)
	})
	logger.Info("connected to broker", "topic", cfg.Topic, "groups", cfg.Groups)

	return pub, nil
}

func newAMQPSubscriber(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (*amqp.Subscriber, error) {
	logger = logger.With("backend", "amqp", "broker_url", config.RedactURL(cfg.AMQP.URL))
	c := amqpConfig(cfg, group)

	sub, err := connectWithRetry(ctx, cfg.AMQP.ConnectTimeout, logger, func() (*amqp.Subscriber, error) {
		return amqp.NewSubscriber(c, logging.Watermill(logger))
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to AMQP broker %s: %w", config.RedactURL(cfg.AMQP.URL), err)
	}

	// Watermill declares the queue only on Subscribe, where a queue of the
	// wrong type would surface as an opaque router error; declare it here.
	if err := declareAMQPTopologyOn(sub.Connection(), c, cfg.Topic, []string{group}); err != nil {
		_ = sub.Close()

		return nil, err
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "queue", QueueName(cfg.Topic, group),
		"queue_type", cfg.AMQP.QueueType)

	return sub, nil
}

// declareAMQPTopology creates the topic's exchange and every group's queue,
// bound to it, so that an event published before a group's first instance
// starts waits in that group's queue instead of being dropped.
func declareAMQPTopology(ch *amqp091.Channel, c amqp.Config, topic string, groups []string) error {
	exchange := c.Exchange.GenerateName(topic)
	if err := ch.ExchangeDeclare(exchange, c.Exchange.Type, c.Exchange.Durable, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring exchange %s: %w", exchange, err)
	}
	for _, group := range groups {
		queue := QueueName(topic, group)
		if _, err := ch.QueueDeclare(queue, c.Queue.Durable, false, false, false, c.Queue.Arguments); err != nil {
			return queueDeclareError(queue, err)
		}
		if err := ch.QueueBind(queue, c.QueueBind.GenerateRoutingKey(topic), exchange, false, nil); err != nil {
			return fmt.Errorf("binding queue %s to exchange %s: %w", queue, exchange, err)
		}
	}

	return nil
}

// declareAMQPTopologyOn is declareAMQPTopology on a channel of its own.
func declareAMQPTopologyOn(conn *amqp091.Connection, c amqp.Config, topic string, groups []string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("opening channel to declare topology: %w", err)
	}
	defer ch.Close()

	return declareAMQPTopology(ch, c, topic, groups)
}

// topologyCheckInterval is how often a publisher checks that every group's
// queue still exists.
const topologyCheckInterval = 5 * time.Second

// redeclareMissingQueues declares the topology again when a group's queue is
// gone: deleted by an operator while none of the group's instances ran, its
// events would otherwise go on being confirmed to the other groups alone.
//
// Warning: the fanout exchange cannot tell the publisher which queues took an
// event, so events published between the deletion and this check (at most
// topologyCheckInterval) do not reach that group; the warning logged here
// names it.
func redeclareMissingQueues(conn *amqp091.Connection, c amqp.Config, topic string, groups []string, logger *slog.Logger) error {
	var missing []string
	for _, group := range groups {
		queue := QueueName(topic, group)
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("opening channel: %w", err)
		}
		_, err = ch.QueueDeclarePassive(queue, c.Queue.Durable, false, false, false, c.Queue.Arguments)
		var amqpErr *amqp091.Error
		switch {
		case errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound:
			missing = append(missing, group) // the broker closed the channel
		case err != nil:
			_ = ch.Close()

			return fmt.Errorf("checking queue %s: %w", queue, err)
		default:
			_ = ch.Close()
		}
	}
	if len(missing) == 0 {
		return nil
	}

	logger.Warn("consumer group queue was missing, declared it again; events published while it was missing did not reach the group",
		"topic", topic, "missing_groups", missing)

	return declareAMQPTopologyOn(conn, c, topic, groups)
}
