package worker

import (
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/millrace/millrace/pkg/audit"
)

// auditAttempts is how many times a record is offered to the broker before
// it is given up.
const auditAttempts = 3

// AuditTrail records each event the handler completes: once the handler (and
// its retries) succeeded, it publishes a handled record for the event, as
// instance of group, to topic through pub, before the event is acked.
//
// Warning: the record is best effort. If the broker does not take it after a
// few tries (it is restarting, say), the record is dropped with a warning and
// the event is still acked: handling an event a second time to record it
// would break exactly-once completion, which matters more than the trail.
// The delivery audit then reports that event missing for this type.
func AuditTrail(pub message.Publisher, topic, group, instance string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err != nil {
				return produced, err
			}

			record, err := audit.Handled(msg, group, instance, time.Now()).Message()
			if err != nil {
				return nil, err
			}
			if err := publishWithRetry(pub, topic, record, logger); err != nil {
				logger.Warn("handled record not sent; the delivery audit will report this event missing",
					"message_uuid", msg.UUID, "audit_topic", topic, "error", err)
			}

			return produced, nil
		}
	}
}

// AuditParked records, after the fact, each event that the poison queue
// middleware inside it parked (it marks the event as Watermill's PoisonQueue
// does). The event is already safe in the poison queue, so a record that
// cannot be sent is logged and the event is still acked.
func AuditParked(pub message.Publisher, topic, group, instance string, logger *slog.Logger) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			produced, err := h(msg)
			if err != nil || msg.Metadata.Get(middleware.ReasonForPoisonedKey) == "" {
				return produced, err
			}

			record, recErr := audit.Parked(msg, group, instance, time.Now()).Message()
			if recErr == nil {
				recErr = publishWithRetry(pub, topic, record, logger)
			}
			if recErr != nil {
				logger.Warn("parked record not sent; the live page and the audit will show this event as missing",
					"message_uuid", msg.UUID, "audit_topic", topic, "error", recErr)
			}

			return produced, nil
		}
	}
}

func publishWithRetry(pub message.Publisher, topic string, msg *message.Message, logger *slog.Logger) error {
	wait := 100 * time.Millisecond
	var err error
	for attempt := 1; attempt <= auditAttempts; attempt++ {
		if err = pub.Publish(topic, msg); err == nil {
			return nil
		}
		if attempt < auditAttempts {
			logger.Warn("audit record not published, retrying",
				"attempt", attempt, "retry_in", wait, "audit_topic", topic, "error", err)
			time.Sleep(wait)
			wait *= 2
		}
	}

	return err
}

func closeLogged(c interface{ Close() error }, what string, logger *slog.Logger) {
	if err := c.Close(); err != nil {
		logger.Error(what, "error", err)
	}
}
