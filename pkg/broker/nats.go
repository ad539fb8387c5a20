package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

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

// On NATS a topic is a JetStream stream, whose name is also the one subject
// it holds (watermill-nats publishes on the stream's name), and each consumer
// group one durable pull consumer on that stream, shared by the group's
// instances: JetStream hands each event of a pull consumer to one of the
// instances pulling from it, and every consumer sees every event.
//
// watermill-nats offers two traps here, both avoided on purpose: its
// GroupedConsumer makes the stream a work queue, where a second group's
// consumer is refused (or, on older servers, takes events from the first),
// and its default consumer is ephemeral and deleted when an instance stops.
// Its publisher is used as is; the subscriber is natsSubscriber below.

// NATSStreamName is the JetStream stream of topic, and the subject its events
// are published on. Stream names may not contain '.', which topics may, so
// '.' becomes '_' (topics "a.b" and "a_b" therefore share a stream).
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

	js, err := jetstream.New(nc)
	if err == nil {
		err = declareNATSTopology(ctx, js, cfg, []string{group})
	}
	if err != nil {
		nc.Close()

		return nil, fmt.Errorf("declaring NATS topology: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "consumer", NATSConsumerName(group))

	return &natsSubscriber{
		nc:      nc,
		js:      js,
		cfg:     cfg,
		group:   group,
		logger:  logger,
		closing: make(chan struct{}),
	}, nil
}

// natsSubscriber is one instance of a group on its durable pull consumer.
//
// It is written on nats.go's JetStream API rather than taken from
// watermill-nats, whose subscriber closes its output channel while a message
// callback may still be sending on it (a data race, and a possible panic on
// shutdown).
type natsSubscriber struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	cfg    config.Config
	group  string
	logger *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Subscribe pulls the group's events one at a time (so that an instance
// holds only the event it is handling and idle instances share the rest)
// and acks or naks each as its handler decides.
func (s *natsSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	cfg := s.cfg
	cfg.Topic = topic
	if err := declareNATSTopology(ctx, s.js, cfg, []string{s.group}); err != nil {
		return nil, err
	}
	consumer, err := s.js.Consumer(ctx, NATSStreamName(topic), NATSConsumerName(s.group))
	if err != nil {
		return nil, fmt.Errorf("opening consumer %s: %w", NATSConsumerName(s.group), err)
	}
	iter, err := consumer.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return nil, fmt.Errorf("pulling from consumer %s: %w", NATSConsumerName(s.group), err)
	}

	// stop ends when the subscriber closes or ctx ends, whichever is first.
	stop, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closing:
		case <-stop.Done():
		}
		cancel()
	}()

	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer iter.Stop()
		for {
			m, err := iter.Next(jetstream.NextContext(stop))
			if stop.Err() != nil {
				if m != nil {
					_ = m.Nak()
				}

				return
			}
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					s.logger.Error("stopped pulling events", "topic", topic, "error", err)

					return
				}
				// Missed heartbeats and the like: the iterator carries on.
				s.logger.Warn("pulling events", "topic", topic, "error", err)

				continue
			}
			if !s.deliver(stop, m, out) {
				return
			}
		}
	}()

	return out, nil
}

// deliver hands m to the handler and acks or naks it; false means stop.
func (s *natsSubscriber) deliver(stop context.Context, m jetstream.Msg, out chan<- *message.Message) bool {
	msg, _ := natsUnmarshaler{}.Unmarshal(m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msg.SetContext(ctx)

	select {
	case out <- msg:
	case <-stop.Done():
		// Never reached a handler: give it back at once.
		_ = m.Nak()

		return false
	}

	select {
	case <-msg.Acked():
		// Wait for the server to confirm the ack, so that a lost ack shows.
		ackCtx, cancelAck := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelAck()
		if err := m.DoubleAck(ackCtx); err != nil {
			s.logger.Error("acking event; it will be redelivered", "message_uuid", msg.UUID, "error", err)
		}

		return true
	case <-msg.Nacked():
		if err := m.Nak(); err != nil {
			s.logger.Error("nacking event; it will be redelivered after ack_wait",
				"message_uuid", msg.UUID, "error", err)
		}

		return true
	case <-stop.Done():
		_ = m.Nak()

		return false
	}
}

// Close stops pulling, naks any event not yet acked and disconnects.
func (s *natsSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	s.nc.Close()

	return nil
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
