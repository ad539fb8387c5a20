package observe

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/pkg/events"
)

// Results of handling an event, the values of the result label.
const (
	// ResultOK: the handler succeeded and the event was acknowledged.
	ResultOK = "ok"
	// ResultError: the handler failed after its retries; the event goes back
	// to the broker for redelivery.
	ResultError = "error"
	// ResultPoisoned: a poison-queue middleware parked the event instead of
	// handling it (Watermill's PoisonQueue marks it with reason_poisoned).
	ResultPoisoned = "poisoned"
)

// EventMetrics counts and times the events a consumer instance handles.
//
// Warning: the end-to-end latency subtracts the publisher's clock
// (published_at) from the consumer's; on separate hosts their skew is part
// of the figure, and a consumer clock behind the publisher's counts as 0.
type EventMetrics struct {
	handled  *prometheus.CounterVec
	retries  *prometheus.CounterVec
	endToEnd *prometheus.HistogramVec
}

// NewEventMetrics registers the event handling metrics in reg.
func NewEventMetrics(reg *Registry) (*EventMetrics, error) {
	m := &EventMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "events_handled_total",
			Help:      "Events this instance finished with, by consumer group and result (ok, error, poisoned).",
		}, []string{"group", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "event_retries_total",
			Help:      "In-process retries of a failed handler, by consumer group.",
		}, []string{"group"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "event_end_to_end_seconds",
			Help: "Time from the publisher accepting the HTTP request to this group's handler " +
				"completing the event, by consumer group.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"group"}),
	}
	if err := registerAll(reg, m.handled, m.retries, m.endToEnd); err != nil {
		return nil, err
	}

	return m, nil
}

// Middleware observes every event group's handler gets: it must be the
// router's outermost middleware, so that it sees the final outcome after
// retries and poison queue. It logs at Debug when an event arrives and when
// it is handled, and the final failure at Error, once, with the event's
// identifiers; Attempts, inside the retry middleware, logs the failures that
// are retried.
func (m *EventMetrics) Middleware(group string, maxRetries int, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			log := logger.With(EventAttrs(msg)...)
			st := &attemptState{logger: log, maxRetries: maxRetries, retries: m.retries.WithLabelValues(group)}
			msg.SetContext(context.WithValue(msg.Context(), attemptKey{}, st))

			log.Debug("handling event")
			start := time.Now()
			produced, err := h(msg)
			m.finish(group, msg, st, time.Since(start), err)

			return produced, err
		}
	}
}

func (m *EventMetrics) finish(group string, msg *message.Message, st *attemptState, took time.Duration, err error) {
	switch {
	case errors.Is(err, context.Canceled):
		// Shutting down: the event goes back to the broker unhandled.
		m.handled.WithLabelValues(group, ResultError).Inc()
		st.logger.Debug("event abandoned on shutdown", "error", err)
	case err != nil:
		m.handled.WithLabelValues(group, ResultError).Inc()
		st.logger.Error("handling event failed; the broker will redeliver it",
			"error", err, "attempts", st.attempts, "duration", took)
	case msg.Metadata.Get(middleware.ReasonForPoisonedKey) != "":
		m.handled.WithLabelValues(group, ResultPoisoned).Inc()
		st.logger.Error("event parked in the poison queue",
			"reason", msg.Metadata.Get(middleware.ReasonForPoisonedKey), "attempts", st.attempts)
	default:
		m.handled.WithLabelValues(group, ResultOK).Inc()
		attrs := []any{"duration", took, "attempts", st.attempts}
		if at, ok := events.PublishedAt(msg); ok {
			e2e := max(time.Since(at), 0)
			m.endToEnd.WithLabelValues(group).Observe(e2e.Seconds())
			attrs = append(attrs, "end_to_end", e2e)
		}
		st.logger.Debug("event handled", attrs...)
	}
}

type attemptKey struct{}

// attemptState follows one event through its retries.
type attemptState struct {
	logger     *slog.Logger
	maxRetries int
	retries    prometheus.Counter
	attempts   int
}

// Attempts goes between the retry middleware and the handler: it counts the
// attempts and retries of each event and logs, at Warn, each failure that
// will be retried. It does nothing on a router without Middleware.
func Attempts(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		st, ok := msg.Context().Value(attemptKey{}).(*attemptState)
		if !ok {
			return h(msg)
		}

		st.attempts++
		if st.attempts > 1 {
			st.retries.Inc()
		}
		produced, err := h(msg)
		if err != nil && st.attempts <= st.maxRetries && !errors.Is(err, context.Canceled) {
			st.logger.Warn("handling event failed, retrying", "error", err, "attempt", st.attempts)
		}

		return produced, err
	}
}

// EventAttrs are the log attributes that identify an event across services:
// its ID (event_id, and message_uuid as Watermill's own lines call it), the
// correlation ID of the request that caused it, and, inside a handler, the
// topic, handler and delivery attempt.
func EventAttrs(msg *message.Message) []any {
	attrs := []any{"event_id", msg.UUID, "message_uuid", msg.UUID}
	if id := middleware.MessageCorrelationID(msg); id != "" {
		attrs = append(attrs, "correlation_id", id)
	}
	ctx := msg.Context()
	if topic := message.SubscribeTopicFromCtx(ctx); topic != "" {
		attrs = append(attrs, "topic", topic)
	}
	if name := message.HandlerNameFromCtx(ctx); name != "" {
		attrs = append(attrs, "handler_name", name)
	}
	if n := msg.Metadata.Get(events.MetaDeliveryAttempt); n != "" {
		attrs = append(attrs, "delivery_attempt", n)
	}
	if msg.Metadata.Get(events.MetaRedelivered) == "true" {
		attrs = append(attrs, "redelivered", true)
	}

	return attrs
}
