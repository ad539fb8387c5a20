package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjetstream "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
	"github.com/millrace/millrace/pkg/logging"
)

// On NATS a topic is a JetStream stream and the subject of the same name (the
// stream name: watermill-nats publishes to the stream's name), and each consumer group one durable pull consumer on that stream, shared by
// the group's instances: JetStream hands each event of a pull consumer to one
// of the instances pulling from it, and every consumer sees every event.
//
// watermill-nats offers two traps here, both avoided on purpose: its
// GroupedConsumer makes the stream a work queue, where a second group's
// consumer is refused (or, on older servers, takes events from the first),
// and its default consumer is ephemeral and deleted when an instance stops.

// NATSStreamName is the JetStream stream of topic, and the subject its events
// are published on. Stream names may not contain '.', which topics may.
func NATSStreamName(topic string) string {
	return "millrace_" + strings.ReplaceAll(topic, ".", "_")
}

// NATSConsumerName is the durable consumer of group on topic.
func NATSConsumerName(group string) string {
	return strings.ReplaceAll(group, ".", "_")
}

func natsStreamConfig(topic string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:     NATSStreamName(topic),
		Subjects: []string{NATSStreamName(topic)},
		Storage:  jetstream.FileStorage,
		// An event stays until every group's consumer has acked it.
		Retention: jetstream.InterestPolicy,
	}
}

func natsConsumerConfig(cfg config.Config, topic, group string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       NATSConsumerName(group),
		FilterSubject: NATSStreamName(topic),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.NATS.AckWait,
		// Never give up on an event: a failing one is redelivered until it
		// succeeds (Watermill's poison queue is the place to park it).
		MaxDeliver: -1,
	}
}

// declareNATSTopology creates the topic's stream and every group's durable
// consumer, so that events published before a group's first instance starts
// are kept for it.
func declareNATSTopology(ctx context.Context, js jetstream.JetStream, cfg config.Config, groups []string) error {
	stream, err := js.CreateOrUpdateStream(ctx, natsStreamConfig(cfg.Topic))
	if err != nil {
		return fmt.Errorf("creating stream %s: %w", NATSStreamName(cfg.Topic), err)
	}
	for _, group := range groups {
		if _, err := stream.CreateOrUpdateConsumer(ctx, natsConsumerConfig(cfg, cfg.Topic, group)); err != nil {
			return fmt.Errorf("creating consumer %s: %w", NATSConsumerName(group), err)
		}
	}

	return nil
}

func connectNATS(ctx context.Context, cfg config.Config, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := connectWithRetry(ctx, cfg.NATS.ConnectTimeout, logger, func() (*nats.Conn, error) {
		return nats.Connect(cfg.NATS.URL,
			nats.Timeout(min(cfg.NATS.ConnectTimeout, 5*time.Second)),
			// After the first connection, keep reconnecting for as long as it takes.
			nats.MaxReconnects(-1),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS server %s: %w", config.RedactURL(cfg.NATS.URL), err)
	}

	return nc, nil
}

func newNATSPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	logger = logger.With("backend", "nats", "broker_url", config.RedactURL(cfg.NATS.URL))
	nc, err := connectNATS(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}

	js, err := jetstream.New(nc)
	if err == nil {
		err = declareNATSTopology(ctx, js, cfg, cfg.Groups)
	}
	if err != nil {
		nc.Close()

		return nil, fmt.Errorf("declaring NATS topology: %w", err)
	}

	pub, err := wmjetstream.NewPublisher(wmjetstream.PublisherConfig{
		Conn:   nc,
		Logger: logging.Watermill(logger),
		ConfigureStream: func(topic string) jetstream.StreamConfig {
			return natsStreamConfig(topic)
		},
	})
	if err != nil {
		nc.Close()

		return nil, fmt.Errorf("creating NATS publisher: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "groups", cfg.Groups)

	return pub, nil
}

func newNATSSubscriber(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Subscriber, error) {
	logger = logger.With("backend", "nats", "broker_url", config.RedactURL(cfg.NATS.URL))
	nc, err := connectNATS(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}

	sub, err := wmjetstream.NewSubscriber(wmjetstream.SubscriberConfig{
		Conn:           nc,
		Logger:         logging.Watermill(logger),
		AckWaitTimeout: cfg.NATS.AckWait,
		ResourceInitializer: func(ctx context.Context, js jetstream.JetStream, topic string) (
			jetstream.Consumer, func(context.Context, watermill.LoggerAdapter), error,
		) {
			if err := declareNATSTopology(ctx, js, cfg, []string{group}); err != nil {
				return nil, nil, err
			}
			c, err := js.Consumer(ctx, NATSStreamName(topic), NATSConsumerName(group))

			// No closer: the durable consumer outlives this instance.
			return c, nil, err
		},
		// Pull one event at a time, so that an instance holds no more than
		// the one it is handling and idle instances share the rest.
		ConsumeOptions: []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(1)},
		Unmarshaler:    natsUnmarshaler{},
	})
	if err != nil {
		nc.Close()

		return nil, fmt.Errorf("creating NATS subscriber: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "consumer", NATSConsumerName(group))

	return sub, nil
}

// natsUnmarshaler always decodes, like the AMQP marshaler: a header with
// several values keeps the first instead of failing the delivery, and what
// JetStream knows about earlier deliveries is recorded.
type natsUnmarshaler struct{}

func (natsUnmarshaler) Unmarshal(m jetstream.Msg) (*message.Message, error) {
	id := m.Headers().Get(wmnats.WatermillUUIDHdr)
	if id == "" {
		id = uuid.NewString()
	}

	msg := message.NewMessage(id, m.Data())
	for key, values := range m.Headers() {
		if key == wmnats.WatermillUUIDHdr || strings.HasPrefix(key, "Nats-") || len(values) == 0 {
			continue
		}
		msg.Metadata.Set(key, values[0])
	}
	if meta, err := m.Metadata(); err == nil {
		msg.Metadata.Set(events.MetaDeliveryAttempt, strconv.FormatUint(meta.NumDelivered, 10))
		msg.Metadata.Set(events.MetaRedelivered, strconv.FormatBool(meta.NumDelivered > 1))
	}

	return msg, nil
}
