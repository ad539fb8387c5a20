package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/events"
)

// The middleware here sits outside the router's retry: it sees an event once
// per delivery, where the retry sees it once per attempt.

// logRedelivery logs an event the broker has delivered before, so that an
// operator can tell at-least-once redelivery (after a crash, a lost
// connection, a nack) from a bug that publishes twice.
func logRedelivery(logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if msg.Metadata.Get(events.MetaRedelivered) == "true" {
				logger.Warn("handling redelivered event",
					"message_uuid", msg.UUID,
					"redelivered", true,
					"delivery_attempt", msg.Metadata.Get(events.MetaDeliveryAttempt))
			} else {
				logger.Debug("handling event", "message_uuid", msg.UUID)
			}

			return h(msg)
		}
	}
}

// completedIDs remembers the IDs of the last events this instance completed.
type completedIDs struct {
	mu   sync.Mutex
	seen map[string]struct{}
	ring []string
	next int
}

func newCompletedIDs(size int) *completedIDs {
	return &completedIDs{seen: make(map[string]struct{}, size), ring: make([]string, size)}
}

func (c *completedIDs) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seen[id]

	return ok
}

func (c *completedIDs) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[id]; ok {
		return
	}
	delete(c.seen, c.ring[c.next])
	c.ring[c.next] = id
	c.seen[id] = struct{}{}
	c.next = (c.next + 1) % len(c.ring)
}

// completionLog records which events a group has completed.
type completionLog interface {
	// Completed reports whether id was recorded; an error means unknown.
	Completed(ctx context.Context, id string) (bool, error)
	// Record records id as completed.
	Record(ctx context.Context, id string) error
}

// skipCompleted acks without handling a redelivered event that was already
// completed: the broker lost the ack (the connection dropped between the
// handler's end and the ack) and gave the event back. This instance's own
// last IDs are always remembered; shared, when set, is asked too, and
// knows what every instance of the group completed.
//
// Warning: without shared, an event redelivered to another instance of the
// group, or after a restart, is handled again. When shared cannot be reached
// the event is handled (at least once beats never) and a warning is logged.
func skipCompleted(local *completedIDs, shared completionLog, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if msg.Metadata.Get(events.MetaRedelivered) == "true" && completedBefore(msg, local, shared, logger) {
				logger.Warn("skipping redelivered event already completed", "message_uuid", msg.UUID)

				return nil, nil
			}

			produced, err := h(msg)
			if err != nil {
				return produced, err
			}
			local.add(msg.UUID)
			if shared != nil {
				if err := shared.Record(context.WithoutCancel(msg.Context()), msg.UUID); err != nil {
					logger.Warn("could not record the completed event; if its ack is lost another instance may handle it again",
						"message_uuid", msg.UUID, "error", err)
				}
			}

			return produced, nil
		}
	}
}

func completedBefore(msg *message.Message, local *completedIDs, shared completionLog, logger *slog.Logger) bool {
	if local.has(msg.UUID) {
		return true
	}
	if shared == nil {
		return false
	}
	done, err := shared.Completed(msg.Context(), msg.UUID)
	if err != nil {
		logger.Warn("could not ask whether the redelivered event was completed; handling it",
			"message_uuid", msg.UUID, "error", err)

		return false
	}

	return done
}

type attemptsKey struct{}

// countAttempts counts the handler's runs on an event for parkPoison. It
// must sit inside the retry.
func countAttempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if n, ok := msg.Context().Value(attemptsKey{}).(*atomic.Int64); ok {
			n.Add(1)
		}

		return h(msg)
	}
}

// parkPoison moves an event whose handler still fails after every retry into
// the group's poison queue, with the body untouched and why, how often and
// where it failed in its metadata, then acks it so that the queue moves on.
// If parking fails the event is nacked and comes back later.
func parkPoison(pub message.Publisher, poisonQueue, group string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			attempts := new(atomic.Int64)
			msg.SetContext(context.WithValue(msg.Context(), attemptsKey{}, attempts))

			produced, err := h(msg)
			if err == nil {
				return produced, nil
			}

			parked := message.NewMessage(msg.UUID, msg.Payload)
			for k, v := range msg.Metadata {
				parked.Metadata.Set(k, v)
			}
			parked.Metadata.Set(broker.MetaPoisonReason, err.Error())
			parked.Metadata.Set(broker.MetaPoisonAttempts, strconv.FormatInt(attempts.Load(), 10))
			parked.Metadata.Set(broker.MetaPoisonHandler, group)
			parked.Metadata.Set(broker.MetaPoisonedAt, time.Now().UTC().Format(time.RFC3339Nano))

			ctx, cancel := context.WithTimeout(context.WithoutCancel(msg.Context()), 30*time.Second)
			defer cancel()
			parked.SetContext(ctx)
			if pubErr := pub.Publish(poisonQueue, parked); pubErr != nil {
				return nil, errors.Join(err, fmt.Errorf("parking in %s: %w", poisonQueue, pubErr))
			}

			// Marked as Watermill's own poison queue marks it, so that the
			// event metrics count it as poisoned and log it, once.
			msg.Metadata.Set(middleware.ReasonForPoisonedKey, err.Error())
			logger.Debug("event parked", "message_uuid", msg.UUID, "poison_queue", poisonQueue)

			return nil, nil
		}
	}
}
