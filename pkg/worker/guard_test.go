package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

const group = "g"

// calls counts handler runs per payload.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *calls) add(body string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[body]++
}

func (c *calls) get(body string) int {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.n[body]
}

// startWorker runs Run for group on topic; the returned stop (also run when
// the test ends) shuts it down and waits for it.
func startWorker(t *testing.T, cfg config.Config, handle message.NoPublishHandlerFunc) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, group, handle, slog.New(slog.DiscardHandler)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("worker did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)

	return stop
}

// rawPublish puts a delivery straight into queue, as a foreign producer or
// the broker's dead-lettering would, with no millrace headers.
func rawPublish(t *testing.T, url, queue string, p amqp091.Publishing) {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatalf("dialing: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("opening channel: %v", err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", queue, true, false, p)
	if err != nil || !dc.Wait() {
		t.Fatalf("publishing: %v", err)
	}
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUndecodableAndFailingEventsAreHandledOrParkedOnce(t *testing.T) {
	url := brokertest.RequireAMQP(t)

	// Headers a broker adds when it dead-letters, and a producer that is not
	// millrace: no ID header, no message-id, nothing is a string.
	foreign := amqp091.Table{
		"x-death": []any{amqp091.Table{"count": int64(1), "reason": "rejected", "queue": "elsewhere"}},
		"retries": int32(7),
		"flag":    true,
		"blob":    []byte{0, 1, 2},
	}

	tests := []struct {
		name       string
		body       string
		headers    amqp091.Table
		fail       bool
		wantCalls  int
		wantParked int
	}{
		{name: "a foreign event with no ID and non-string headers is handled once", body: "foreign-ok",
			headers: foreign, wantCalls: 1},
		{name: "a foreign event that always fails is retried then parked once", body: "foreign-fail",
			headers: foreign, fail: true, wantCalls: 3, wantParked: 1},
		{name: "a millrace event that always fails is retried then parked once", body: "plain-fail",
			headers: amqp091.Table{"_watermill_message_uuid": "id-plain-fail"}, fail: true, wantCalls: 3, wantParked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := brokertest.Topic(t)
			queue, poison := broker.QueueName(topic, group), broker.PoisonQueue(topic, group)
			brokertest.DeleteAMQPTopology(t, url, topic, queue, poison)

			cfg := config.Default()
			cfg.AMQP.URL, cfg.Topic, cfg.Groups = url, topic, []string{group}
			cfg.Consumer.ShutdownTimeout = 5 * time.Second
			cfg.Consumer.Retry.MaxRetries = 2
			cfg.Consumer.Retry.InitialInterval = 10 * time.Millisecond
			cfg.Consumer.Retry.MaxInterval = 20 * time.Millisecond

			pub, err := broker.NewPublisher(t.Context(), cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("NewPublisher: %v", err)
			}
			_ = pub.Close() // the topology is what was needed

			c := &calls{n: map[string]int{}}
			stop := startWorker(t, cfg, func(msg *message.Message) error {
				c.add(string(msg.Payload))
				if tt.fail {
					return errors.New("handler refuses " + string(msg.Payload))
				}

				return nil
			})
			rawPublish(t, url, queue, amqp091.Publishing{Headers: tt.headers, Body: []byte(tt.body)})

			waitFor(t, "the handler calls", func() bool { return c.get(tt.body) >= tt.wantCalls })
			if tt.wantParked > 0 {
				waitFor(t, "the parked event", func() bool { n := brokertest.QueueDepth(t, url, poison); return n >= tt.wantParked })
			}
			// Once the worker has stopped, an event it did not ack is back in
			// the queue: an empty queue means it was acked, not looping.
			stop()
			if n := brokertest.QueueDepth(t, url, queue); n != 0 {
				t.Errorf("group's queue holds %d events after the worker stopped, want 0", n)
			}

			parked, err := broker.InspectPoison(cfg, group, 10)
			if err != nil {
				t.Fatalf("InspectPoison: %v", err)
			}
			if got := c.get(tt.body); got != tt.wantCalls {
				t.Errorf("handler ran %d times, want %d", got, tt.wantCalls)
			}
			if len(parked) != tt.wantParked {
				t.Fatalf("%d events parked, want %d", len(parked), tt.wantParked)
			}
			for _, p := range parked {
				m := p.Message.Metadata
				if string(p.Message.Payload) != tt.body {
					t.Errorf("parked body %q, want %q", p.Message.Payload, tt.body)
				}
				if m.Get(broker.MetaPoisonAttempts) != "3" || m.Get(broker.MetaPoisonHandler) != group ||
					p.Reason() != "handler refuses "+tt.body {
					t.Errorf("parked metadata %v, want 3 attempts by %s and the handler's error", m, group)
				}
			}
		})
	}
}

func TestReplayPutsParkedEventsBackForTheirGroupOnly(t *testing.T) {
	url := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	queue, other, poison := broker.QueueName(topic, group), broker.QueueName(topic, "other"), broker.PoisonQueue(topic, group)
	brokertest.DeleteAMQPTopology(t, url, topic, queue, other, poison)

	cfg := config.Default()
	cfg.AMQP.URL, cfg.Topic, cfg.Groups = url, topic, []string{group, "other"}
	cfg.Consumer.ShutdownTimeout = 5 * time.Second
	cfg.Consumer.Retry.MaxRetries = 0
	pub, err := broker.NewPublisher(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	defer pub.Close()

	var mu sync.Mutex
	failing := true
	c := &calls{n: map[string]int{}}
	startWorker(t, cfg, func(msg *message.Message) error {
		c.add(string(msg.Payload) + "/" + msg.UUID)
		mu.Lock()
		defer mu.Unlock()
		if failing {
			return errors.New("not yet")
		}

		return nil
	})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	msg := message.NewMessage("replay-id", []byte("replay me\r\n\x00"))
	msg.SetContext(ctx)
	if err := pub.Publish(topic, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	waitFor(t, "the parked event", func() bool { n := brokertest.QueueDepth(t, url, poison); return n == 1 })

	mu.Lock()
	failing = false
	mu.Unlock()
	ids, err := broker.ReplayPoison(ctx, cfg, group, 10)
	if err != nil || len(ids) != 1 || ids[0] != "replay-id" {
		t.Fatalf("ReplayPoison: %v %v, want [replay-id]", ids, err)
	}
	key := "replay me\r\n\x00/replay-id"
	waitFor(t, "the replayed event to be handled", func() bool { return c.get(key) == 2 })
	waitFor(t, "the group's queue to drain", func() bool { n := brokertest.QueueDepth(t, url, queue); return n == 0 })
	if n := brokertest.QueueDepth(t, url, poison); n != 0 {
		t.Errorf("poison queue holds %d events after replay, want 0", n)
	}
	if n := brokertest.QueueDepth(t, url, other); n != 1 {
		t.Errorf("the other group's queue holds %d events, want its 1 original", n)
	}
	if _, err := broker.ReplayPoison(ctx, cfg, group, 10); !errors.Is(err, broker.ErrPoisonEmpty) {
		t.Errorf("second replay: %v, want ErrPoisonEmpty", err)
	}
}
