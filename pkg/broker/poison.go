package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

// Metadata keys a parked (poisoned) event carries besides its own.
const (
	// MetaPoisonReason is the error of the handler's last attempt.
	MetaPoisonReason = "poison_reason"
	// MetaPoisonAttempts is how many times the handler ran on the event.
	MetaPoisonAttempts = "poison_attempts"
	// MetaPoisonHandler names the handler (the consumer group) that gave up.
	MetaPoisonHandler = "poison_handler"
	// MetaPoisonedAt is when the event was parked, RFC 3339, UTC.
	MetaPoisonedAt = "poisoned_at"
)

// PoisonQueue is the queue where group parks the events of topic it could
// not handle: one per consumer group, so that each type's failures are kept
// and replayed apart from the other types'.
func PoisonQueue(topic, group string) string {
	return QueueName(topic, group) + ".poison"
}

// ErrPoisonUnsupported is NewPoisonPublisher's answer on a backend that has
// no poison queue yet.
var ErrPoisonUnsupported = errors.New("this backend has no poison queue")

// NewPoisonPublisher connects a publisher whose topic is a queue name: it
// publishes straight into PoisonQueue(cfg.Topic, group), which it declares,
// and returns once the broker has confirmed the event.
//
// Warning: only AMQP has a poison queue; other backends return
// ErrPoisonUnsupported, and an event that always fails is redelivered until it
// succeeds (the poison queue came before those backends and has not been
// ported to their stores yet).
func NewPoisonPublisher(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Publisher, error) {
	if cfg.Backend != "amqp" {
		return nil, fmt.Errorf("%w: %s", ErrPoisonUnsupported, cfg.Backend)
	}
	logger = logger.With("backend", "amqp", "broker_url", config.RedactURL(cfg.AMQP.URL))
	queue := PoisonQueue(cfg.Topic, group)

	pub := newConfirmPublisher(cfg.AMQP.URL, 1, func(ch *amqp091.Channel) error {
		if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declaring queue %s: %w", queue, err)
		}

		return nil
	}, toQueue, logger)

	if err := pub.connectWithRetry(ctx, cfg.AMQP.ConnectTimeout); err != nil {
		return nil, err
	}

	return pub, nil
}

// ParkedEvent is one event in a poison queue.
type ParkedEvent struct {
	// Message is the event as a handler saw it, with the poison metadata.
	Message *message.Message
	// Redelivered is true when the poison queue has handed it out before
	// (an earlier inspection, for instance).
	Redelivered bool
}

// Reason is why the event was parked.
func (e ParkedEvent) Reason() string { return e.Message.Metadata.Get(MetaPoisonReason) }

// Errors of the poison queue tools.
var (
	// ErrPoisonEmpty means there was nothing to replay.
	ErrPoisonEmpty = errors.New("poison queue is empty")
	// ErrNoPoisonQueue means the poison queue does not exist.
	ErrNoPoisonQueue = errors.New("poison queue does not exist")
)

// poisonTool is a short-lived connection to one group's poison queue.
type poisonTool struct {
	conn  *amqp091.Connection
	ch    *amqp091.Channel
	queue string
	topic string
	group string
}

func openPoisonTool(cfg config.Config, group string) (*poisonTool, error) {
	if cfg.Backend != "amqp" {
		return nil, unknownBackend(cfg.Backend)
	}
	conn, err := amqp091.DialConfig(cfg.AMQP.URL, amqp091.Config{Dial: amqp091.DefaultDial(cfg.AMQP.ConnectTimeout)})
	if err != nil {
		return nil, fmt.Errorf("connecting to AMQP broker %s: %w", config.RedactURL(cfg.AMQP.URL), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()

		return nil, fmt.Errorf("opening channel: %w", err)
	}

	queue := PoisonQueue(cfg.Topic, group)
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		_ = conn.Close()

		return nil, fmt.Errorf("%w: %s (no instance of group %s has run on topic %s yet)",
			ErrNoPoisonQueue, queue, group, cfg.Topic)
	}

	return &poisonTool{conn: conn, ch: ch, queue: queue, topic: cfg.Topic, group: group}, nil
}

func (t *poisonTool) close() {
	_ = t.ch.Close()
	_ = t.conn.Close()
}

// InspectPoison returns up to limit events parked by group, oldest first,
// and leaves them all in the queue.
func InspectPoison(cfg config.Config, group string, limit int) ([]ParkedEvent, error) {
	t, err := openPoisonTool(cfg, group)
	if err != nil {
		return nil, err
	}
	// Closing the channel gives back every event taken without ack, in order.
	defer t.close()

	var parked []ParkedEvent
	for len(parked) < limit {
		d, ok, err := t.ch.Get(t.queue, false)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", t.queue, err)
		}
		if !ok {
			break
		}
		msg, _ := marshaler{}.Unmarshal(d)
		parked = append(parked, ParkedEvent{Message: msg, Redelivered: d.Redelivered})
	}

	return parked, nil
}

// ReplayPoison moves up to limit events parked by group back into that
// group's queue (only that group's: the other types already handled them),
// body and ID unchanged and the poison metadata removed. Each is removed from
// the poison queue only once the broker has confirmed its copy in the group's
// queue. It returns the IDs it replayed.
func ReplayPoison(ctx context.Context, cfg config.Config, group string, limit int) ([]string, error) {
	t, err := openPoisonTool(cfg, group)
	if err != nil {
		return nil, err
	}
	defer t.close()

	if err := t.ch.Confirm(false); err != nil {
		return nil, fmt.Errorf("enabling publisher confirms: %w", err)
	}
	returns := t.ch.NotifyReturn(make(chan amqp091.Return, 1))
	cc := &confirmChannel{conn: t.conn, ch: t.ch, returns: returns}
	target := QueueName(t.topic, group)

	var replayed []string
	for len(replayed) < limit {
		d, ok, err := t.ch.Get(t.queue, false)
		if err != nil {
			return replayed, fmt.Errorf("reading %s: %w", t.queue, err)
		}
		if !ok {
			break
		}

		headers := amqp091.Table{}
		for k, v := range d.Headers {
			if !dropOnReplay(k) {
				headers[k] = v
			}
		}
		p := amqp091.Publishing{
			Headers:      headers,
			ContentType:  d.ContentType,
			DeliveryMode: amqp091.Persistent,
			MessageId:    d.MessageId,
			Timestamp:    d.Timestamp,
			Body:         d.Body,
		}
		acked, err := cc.publish(ctx, "", target, true, p)
		if err == nil && !acked {
			err = ErrNotConfirmed
		}
		if err != nil {
			return replayed, fmt.Errorf("replaying %s into %s: %w", d.MessageId, target, err)
		}
		if err := d.Ack(false); err != nil {
			return replayed, fmt.Errorf("removing %s from %s after replay: %w", d.MessageId, t.queue, err)
		}
		replayed = append(replayed, d.MessageId)
	}
	if len(replayed) == 0 {
		return nil, ErrPoisonEmpty
	}

	return replayed, nil
}

// dropOnReplay tells the headers a replayed event must not carry: the poison
// metadata, what the broker added (x-death ...) and the delivery facts of its
// earlier life, which the next delivery sets afresh.
func dropOnReplay(key string) bool {
	return strings.HasPrefix(key, "poison") || strings.HasPrefix(key, "x-") ||
		key == events.MetaRedelivered || key == events.MetaDeliveryAttempt
}
