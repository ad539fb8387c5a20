package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

// testConfig is the default configuration aimed at the test broker, on a
// topic of the test's own, with the given queue type and groups.
func testConfig(t *testing.T, queueType string, groups ...string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.AMQP.URL = brokertest.RequireAMQP(t)
	cfg.AMQP.QueueType = queueType
	cfg.AMQP.ConnectTimeout = 5 * time.Second
	cfg.Consumer.ShutdownTimeout = 5 * time.Second
	cfg.Topic = brokertest.Topic(t)
	cfg.Groups = groups
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}

	queues := make([]string, 0, len(groups))
	for _, g := range groups {
		queues = append(queues, broker.QueueName(cfg.Topic, g))
	}
	brokertest.DeleteAMQPTopology(t, cfg.AMQP.URL, cfg.Topic, queues...)

	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// subscribe starts one instance of group and returns its event channel.
func subscribe(t *testing.T, cfg config.Config, group string) <-chan *message.Message {
	t.Helper()
	sub, err := broker.NewSubscriber(t.Context(), cfg, group, testLogger(t))
	if err != nil {
		t.Fatalf("NewSubscriber(%s): %v", group, err)
	}
	t.Cleanup(func() { _ = sub.Close() })

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	msgs, err := sub.Subscribe(ctx, cfg.Topic)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", group, err)
	}

	return msgs
}

// declaredType finds the type of an existing queue by declaring it again
// with each type: RabbitMQ accepts only the queue's own.
func declaredType(t *testing.T, amqpURL, queue string) string {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dialing broker: %v", err)
	}
	defer conn.Close()

	for _, typ := range config.QueueTypes {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatalf("opening channel: %v", err)
		}
		_, err = ch.QueueDeclare(queue, true, false, false, false, amqp091.Table{"x-queue-type": typ})
		_ = ch.Close()
		if err == nil {
			return typ
		}
	}
	t.Fatalf("queue %s matches none of %v", queue, config.QueueTypes)

	return ""
}

func TestQueueTypes(t *testing.T) {
	tests := []struct {
		name      string
		queueType string
	}{
		{"classic queues give every group every event exactly once", config.QueueClassic},
		{"quorum queues give every group every event exactly once", config.QueueQuorum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			groups := []string{"alpha", "beta"}
			cfg := testConfig(t, tt.queueType, groups...)
			pub := newPublisher(t, cfg)

			const instances, n = 2, 40

			type delivery struct{ group, id string }
			var (
				mu       sync.Mutex
				handled  = map[string]map[string]int{} // group -> event ID -> times
				perInst  = map[string]int{}            // "group/instance" -> events
				received = make(chan delivery, 4*n)    // one per handled event
			)
			for _, g := range groups {
				handled[g] = map[string]int{}
				for i := range instances {
					msgs := subscribe(t, cfg, g)
					name := fmt.Sprintf("%s/%d", g, i)
					go func() {
						for msg := range msgs {
							mu.Lock()
							handled[g][msg.UUID]++
							perInst[name]++
							mu.Unlock()
							msg.Ack()
							received <- delivery{g, msg.UUID}
						}
					}()
				}
			}

			for i := range n {
				msg := events.New(fmt.Appendf(nil, "event %d", i), "text/plain", time.Now())
				if err := pub.Publish(cfg.Topic, msg); err != nil {
					t.Fatalf("publishing event %d: %v", i, err)
				}
			}

			deadline := time.After(30 * time.Second)
			for range n * len(groups) {
				select {
				case <-received:
				case <-deadline:
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("timed out; handled per group: alpha %d, beta %d of %d",
						len(handled["alpha"]), len(handled["beta"]), n)
				}
			}

			mu.Lock()
			defer mu.Unlock()
			for _, g := range groups {
				if len(handled[g]) != n {
					t.Errorf("group %s handled %d distinct events, want %d", g, len(handled[g]), n)
				}
				for id, n := range handled[g] {
					if n != 1 {
						t.Errorf("group %s handled event %s %d times", g, id, n)
					}
				}
				for i := range instances {
					if perInst[fmt.Sprintf("%s/%d", g, i)] == 0 {
						t.Errorf("instance %d of group %s handled nothing: instances do not compete", i, g)
					}
				}
				if got := declaredType(t, cfg.AMQP.URL, broker.QueueName(cfg.Topic, g)); got != tt.queueType {
					t.Errorf("queue of group %s is %s, want %s", g, got, tt.queueType)
				}
			}
			t.Logf("%s: %d events, split per instance %v", tt.queueType, n, perInst)
		})
	}
}

func TestDeliveryAttempt(t *testing.T) {
	tests := []struct {
		name      string
		queueType string
		// want is the delivery_attempt of the first three deliveries of one
		// event that is nacked twice; "" where the broker does not count.
		want []string
		// wantHeader is the broker's x-delivery-count header on each.
		wantHeader []string
	}{
		{"a quorum queue counts every delivery", config.QueueQuorum, []string{"1", "2", "3"}, []string{"", "1", "2"}},
		{"a classic queue only tells the first delivery", config.QueueClassic, []string{"1", "", ""}, []string{"", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, tt.queueType, "solo")
			pub := newPublisher(t, cfg)
			msgs := subscribe(t, cfg, "solo")

			sent := events.New([]byte("fail twice"), "", time.Now())
			if err := pub.Publish(cfg.Topic, sent); err != nil {
				t.Fatalf("publishing: %v", err)
			}

			var got, headers, redelivered []string
			deadline := time.After(20 * time.Second)
			for len(got) < len(tt.want) {
				select {
				case msg := <-msgs:
					if msg.UUID != sent.UUID {
						t.Fatalf("got event %s, want %s", msg.UUID, sent.UUID)
					}
					got = append(got, msg.Metadata.Get(events.MetaDeliveryAttempt))
					headers = append(headers, msg.Metadata.Get("x-delivery-count"))
					redelivered = append(redelivered, msg.Metadata.Get(events.MetaRedelivered))
					if len(got) < len(tt.want) {
						msg.Nack()
					} else {
						msg.Ack()
					}
				case <-deadline:
					t.Fatalf("timed out after %d deliveries", len(got))
				}
			}

			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("delivery_attempt = %q, want %q", got, tt.want)
			}
			if strings.Join(headers, ",") != strings.Join(tt.wantHeader, ",") {
				t.Errorf("x-delivery-count = %q, want %q", headers, tt.wantHeader)
			}
			if want := "false,true,true"; strings.Join(redelivered, ",") != want {
				t.Errorf("redelivered = %q, want %q", redelivered, want)
			}
		})
	}
}

func TestQueueTypeMismatch(t *testing.T) {
	tests := []struct {
		name             string
		existing, wanted string
	}{
		{"switching a classic queue to quorum is refused with the fix", config.QueueClassic, config.QueueQuorum},
		{"switching a quorum queue to classic is refused with the fix", config.QueueQuorum, config.QueueClassic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t, tt.existing, "solo")
			_ = newPublisher(t, cfg)
			queue := broker.QueueName(cfg.Topic, "solo")

			cfg.AMQP.QueueType = tt.wanted
			pub, err := broker.NewPublisher(t.Context(), cfg, testLogger(t))
			if err == nil {
				_ = pub.Close()
				t.Fatal("publisher started on a queue of the other type")
			}
			checkMismatchError(t, "publisher", err, queue)

			sub, err := broker.NewSubscriber(t.Context(), cfg, "solo", testLogger(t))
			if err == nil {
				_ = sub.Close()
				t.Fatal("subscriber started on a queue of the other type")
			}
			checkMismatchError(t, "subscriber", err, queue)

			if got := declaredType(t, cfg.AMQP.URL, queue); got != tt.existing {
				t.Errorf("queue is now %s, want it left %s", got, tt.existing)
			}
		})
	}
}

func checkMismatchError(t *testing.T, who string, err error, queue string) {
	t.Helper()
	for _, want := range []string{queue, "amqp.queue_type", "rabbitmqctl delete_queue " + queue} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s error does not say %q: %v", who, want, err)
		}
	}
}
