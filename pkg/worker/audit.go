package worker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/audit"
)

// auditAttempts is how many times a handled record is offered to the broker
// before the event itself is given back for redelivery.
const auditAttempts = 3

// AuditTrail records each event the handler completes: once the handler (and
// its retries) succeeded, it publishes a handled record for the event, as
// instance of group, to topic through pub, and only then lets the event be
// acked.
//
// The record is sent before the ack so that no handled event goes
// unrecorded. If the broker does not take the record after a few tries, the
// event is nacked and redelivered: it is handled again and recorded then, as
// a redelivery.
//
// Warning: in that case the handler runs twice for one event. The audit shows
// it as a duplicate when the first record did reach the broker despite the
// error (a lost confirm), and as a redelivery otherwise. A broker that never
// takes records (the audit exchange deleted under running consumers) makes
// every event go round again; restart the consumers to declare it anew.
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
				return nil, fmt.Errorf("recording handled event %s: %w", msg.UUID, err)
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
