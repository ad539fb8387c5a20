package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/audit"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

// auditPublisher keeps what it is asked to publish, failing the first
// failures calls.
type auditPublisher struct {
	mu       sync.Mutex
	failures int
	topics   []string
	records  []audit.Record
}

func (p *auditPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--

		return errors.New("broker unavailable")
	}
	for _, m := range msgs {
		r, err := audit.Parse(m.Payload)
		if err != nil {
			return err
		}
		p.topics = append(p.topics, topic)
		p.records = append(p.records, r)
	}

	return nil
}

func (p *auditPublisher) Close() error { return nil }

func (p *auditPublisher) published() ([]string, []audit.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()

	return append([]string(nil), p.topics...), append([]audit.Record(nil), p.records...)
}

func TestTheAuditTrailRecordsEachCompletedEventOnceBeforeTheAck(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		handlerFails  int32 // first calls of the handler that fail
		auditFailures int   // first publishes of the record that fail
	}{
		{name: "a handler that succeeds at once"},
		{name: "a handler that succeeds on its third try is recorded once", handlerFails: 2},
		{name: "a record the broker refuses once is sent again without handling the event again", auditFailures: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &auditPublisher{failures: tt.auditFailures}
			pubSub, calls := auditedRouter(t, pub, tt.handlerFails)

			msg := message.NewMessage("event-1", []byte("Hello World"))
			msg.Metadata.Set(events.MetaDeliveryAttempt, "1")
			msg.Metadata.Set(events.MetaRedelivered, "false")
			acked := make(chan error, 1)
			go func() { acked <- pubSub.Publish("stuff", msg) }()

			select {
			case err := <-acked:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the event was not acked")
			}

			topics, records := pub.published()
			if len(records) != 1 {
				t.Fatalf("published %d records, want 1: %+v", len(records), records)
			}
			r := records[0]
			if topics[0] != "stuff.audit" || r.Kind != audit.KindHandled || r.EventID != "event-1" ||
				r.Group != "consumer" || r.Instance != "4242" || r.Attempt != 1 || r.Redelivered {
				t.Errorf("record on %s = %+v", topics[0], r)
			}
			if want := tt.handlerFails + 1; calls.Load() != want {
				t.Errorf("handler ran %d times, want %d", calls.Load(), want)
			}
		})
	}
}

func TestAnEventWhoseRecordCannotBeSentIsStillAckedAndNotHandledAgain(t *testing.T) {
	t.Parallel()
	pub := &auditPublisher{failures: 1000}
	pubSub, calls := auditedRouter(t, pub, 0)

	acked := make(chan error, 1)
	go func() { acked <- pubSub.Publish("stuff", message.NewMessage("event-1", []byte("Hello World"))) }()

	select {
	case err := <-acked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not acked although its handler succeeded")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want once", n)
	}
	if _, records := pub.published(); len(records) != 0 {
		t.Errorf("published %d records, want none", len(records))
	}
}

// auditedRouter runs a router with the audit trail around a handler that
// fails its first fails calls, on a GoChannel that blocks Publish until ack.
func auditedRouter(t *testing.T, pub message.Publisher, fails int32) (*gochannel.GoChannel, *atomic.Int32) {
	t.Helper()
	cfg := config.Default()
	cfg.Consumer.Retry.InitialInterval = time.Millisecond
	cfg.Consumer.Retry.MaxInterval = 5 * time.Millisecond
	logger := slog.New(slog.DiscardHandler)

	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, nil)
	router, err := NewRouter(cfg, logger, AuditTrail(pub, cfg.AuditTopic(), "consumer", "4242", logger))
	if err != nil {
		t.Fatal(err)
	}
	calls := &atomic.Int32{}
	router.AddConsumerHandler("consumer", "stuff", pubSub, func(*message.Message) error {
		if calls.Add(1) <= fails {
			return errors.New("transient")
		}

		return nil
	})
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = router.Close()
		_ = pubSub.Close()
	})
	<-router.Running()

	return pubSub, calls
}
