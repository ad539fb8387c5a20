package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
	"github.com/millrace/millrace/pkg/logging"
)

func testConfig(url, topic string, groups ...string) config.Config {
	cfg := config.Default()
	cfg.AMQP.URL = url
	cfg.AMQP.ConnectTimeout = 5 * time.Second
	cfg.Topic = topic
	cfg.Groups = groups

	return cfg
}

func newEvent(ctx context.Context, body string) *message.Message {
	msg := events.New([]byte(body), "text/plain", time.Now())
	msg.SetContext(ctx)

	return msg
}

func TestConfirmPublisher(t *testing.T) {
	url := brokertest.RequireAMQP(t)
	logger := slog.New(slog.DiscardHandler)

	tests := []struct {
		name    string
		groups  []string
		topic   func(topic string) string
		url     string
		wantErr error
		wantAny bool
	}{
		{name: "a confirmed event lands in every group's queue", groups: []string{"a", "b"}},
		{name: "an event no queue is bound to is reported unroutable", groups: nil, wantErr: ErrUnroutable},
		{
			name:    "an event to an exchange that does not exist fails",
			groups:  []string{"a"},
			topic:   func(topic string) string { return topic + "-missing" },
			wantAny: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := brokertest.Topic(t)
			var queues []string
			for _, g := range tt.groups {
				queues = append(queues, QueueName(topic, g))
			}
			brokertest.DeleteAMQPTopology(t, url, topic, queues...)

			pub, err := NewPublisher(t.Context(), testConfig(url, topic, tt.groups...), logger)
			if err != nil {
				t.Fatalf("NewPublisher: %v", err)
			}
			defer pub.Close()

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			target := topic
			if tt.topic != nil {
				target = tt.topic(topic)
			}
			err = pub.Publish(target, newEvent(ctx, "hello"))

			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Publish: got %v, want %v", err, tt.wantErr)
			case tt.wantAny && err == nil:
				t.Fatal("Publish: got no error, want one")
			case tt.wantErr == nil && !tt.wantAny && err != nil:
				t.Fatalf("Publish: %v", err)
			}
			if tt.wantErr != nil || tt.wantAny {
				// The publisher must still work after a failure.
				if err := pub.Publish(topic, newEvent(ctx, "after")); err != nil && !errors.Is(err, ErrUnroutable) {
					t.Fatalf("Publish after a failure: %v", err)
				}

				return
			}
			for _, q := range queues {
				if n := brokertest.QueueDepth(t, url, q); n != 1 {
					t.Errorf("queue %s holds %d events, want 1", q, n)
				}
			}
		})
	}
}

func TestConfirmPublisherGivesUpAtTheMessageDeadline(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1 of loopback: every dial fails at once, and
	// the publish must fail rather than wait for a broker.
	pub := newConfirmPublisher("amqp://guest:guest@127.0.0.1:1/", 4,
		func(*amqp091.Channel) error { return nil }, toFanoutExchange, slog.New(slog.DiscardHandler))
	defer pub.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := pub.Publish("anything", newEvent(ctx, "hello"))
	if err == nil {
		t.Fatal("Publish to a broker that is down: got no error")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Publish took %s, want at most the 2s deadline", took)
	}
}

func TestConnectFailuresNeverShowThePassword(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := testConfig("amqp://guest:s3cr3t-pw@127.0.0.1:1/", "any", "a")
	cfg.AMQP.ConnectTimeout = 300 * time.Millisecond

	_, err := NewPublisher(t.Context(), cfg, logger)
	if err == nil {
		t.Fatal("NewPublisher with no broker: got no error")
	}
	for what, text := range map[string]string{"error": err.Error(), "logs": logs.String()} {
		if strings.Contains(text, "s3cr3t-pw") {
			t.Errorf("the password appears in the %s: %s", what, text)
		}
		if !strings.Contains(text, "127.0.0.1:1") {
			t.Errorf("the %s do not name the broker: %s", what, text)
		}
	}
}

// BenchmarkPublishConcurrent compares watermill-amqp's confirming publisher
// (what the publisher used before) with confirmPublisher, both with a pool of
// 16 channels, under as many concurrent publishers as -cpu times 16.
func BenchmarkPublishConcurrent(b *testing.B) {
	url := brokertest.RequireAMQP(b)
	logger := slog.New(slog.DiscardHandler)

	publishers := []struct {
		name string
		new  func(cfg config.Config) (message.Publisher, error)
	}{
		{"watermill-amqp", func(cfg config.Config) (message.Publisher, error) {
			c := amqpConfig(cfg, "")
			pub, err := amqp.NewPublisher(c, logging.Watermill(logger))
			if err != nil {
				return nil, err
			}
			ch, err := pub.Connection().Channel()
			if err != nil {
				return nil, err
			}
			defer ch.Close()

			return pub, declareAMQPTopology(ch, c, cfg.Topic, cfg.Groups)
		}},
		{"confirm", func(cfg config.Config) (message.Publisher, error) {
			return NewPublisher(context.Background(), cfg, logger)
		}},
	}
	for _, p := range publishers {
		b.Run(p.name, func(b *testing.B) {
			topic := brokertest.Topic(b)
			brokertest.DeleteAMQPTopology(b, url, topic, QueueName(topic, "bench"))
			pub, err := p.new(testConfig(url, topic, "bench"))
			if err != nil {
				b.Fatalf("creating publisher: %v", err)
			}
			defer pub.Close()

			var failed atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := pub.Publish(topic, newEvent(context.Background(), "bench")); err != nil {
						failed.Add(1)
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d publishes failed", failed.Load())
			}
			rate := float64(b.N) / elapsed.Seconds()
			b.ReportMetric(rate, "events/s")
			if b.N > 1 {
				fmt.Printf("publish %s: %d events in %s, %.0f confirmed events/s\n",
					p.name, b.N, elapsed.Round(time.Millisecond), rate)
			}
		})
	}
}
