package main

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/audit"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
	"github.com/millrace/millrace/pkg/logging"
)

// auditedPublisher sends, for every event the broker confirmed on the events
// topic, a published record to the audit topic, so that the live page and the
// audit know of every event. The record goes out in the background: the
// client's answer never waits for it, and failing to send it is logged, not
// reported to the client, whose event is stored.
type auditedPublisher struct {
	message.Publisher
	records                     message.Publisher
	topic, auditTopic, instance string
	logger                      *slog.Logger
	pending                     sync.WaitGroup
}

// withAuditTrail wraps pub so that it records, through records, what it
// publishes on cfg.Topic.
func withAuditTrail(pub, records message.Publisher, cfg config.Config, logger *slog.Logger) message.Publisher {
	return &auditedPublisher{
		Publisher:  pub,
		records:    records,
		topic:      cfg.Topic,
		auditTopic: cfg.AuditTopic(),
		instance:   strconv.Itoa(logging.Instance()),
		logger:     logger,
	}
}

func (p *auditedPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.Publisher.Publish(topic, msgs...); err != nil || topic != p.topic {
		return err
	}

	for _, msg := range msgs {
		at, ok := events.PublishedAt(msg)
		if !ok {
			at = time.Now()
		}
		record := audit.Published(msg, p.instance, at)
		p.pending.Go(func() { p.send(record) })
	}

	return nil
}

func (p *auditedPublisher) send(record audit.Record) {
	msg, err := record.Message()
	if err == nil {
		err = p.records.Publish(p.auditTopic, msg)
	}
	if err != nil {
		p.logger.Warn("published record not sent; the live page and the audit will not list this event",
			"event_id", record.EventID, "audit_topic", p.auditTopic, "error", err)
	}
}

// Close waits for the records still being sent, then closes both publishers.
func (p *auditedPublisher) Close() error {
	p.pending.Wait()

	return errors.Join(p.records.Close(), p.Publisher.Close())
}
