package broker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

func TestEveryViewerSeesEveryMessageAndLeavesNoQueueBehind(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	cfg := config.Default()
	cfg.AMQP.URL = amqpURL
	cfg.AMQP.ConnectTimeout = 5 * time.Second
	cfg.Topic = brokertest.Topic(t)
	cfg.Groups = []string{"g"}
	topic := cfg.AuditTopic()
	brokertest.DeleteAMQPTopology(t, amqpURL, cfg.Topic, QueueName(cfg.Topic, "g"))
	logger := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	pub, err := NewPublisher(ctx, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })

	ids := []string{"viewer-a", "viewer-b"}
	var subs []message.Subscriber
	var feeds []<-chan *message.Message
	for _, id := range ids {
		sub, err := newAMQPBroadcastSubscriber(ctx, cfg, id, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Close() })
		feed, err := sub.Subscribe(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
		feeds = append(feeds, feed)
	}
	for _, id := range ids {
		if !queueExists(t, amqpURL, BroadcastQueueName(topic, id)) {
			t.Fatalf("no queue for viewer %s while it runs", id)
		}
	}

	for _, id := range []string{"1", "2", "3"} {
		if err := pub.Publish(topic, message.NewMessage(id, []byte("record "+id))); err != nil {
			t.Fatal(err)
		}
	}
	for i, feed := range feeds {
		for _, want := range []string{"1", "2", "3"} {
			select {
			case msg := <-feed:
				msg.Ack()
				if msg.UUID != want {
					t.Errorf("viewer %d got %s, want %s", i, msg.UUID, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("viewer %d did not get message %s", i, want)
			}
		}
	}

	for _, sub := range subs {
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		deadline := time.Now().Add(10 * time.Second)
		for queueExists(t, amqpURL, BroadcastQueueName(topic, id)) {
			if time.Now().After(deadline) {
				t.Fatalf("the queue of viewer %s is still there after it closed", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestABackendWithoutBroadcastSaysSo(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.Backend = "carrier-pigeon"

	_, err := NewBroadcastSubscriber(context.Background(), cfg, slog.New(slog.DiscardHandler))

	if !errors.Is(err, ErrBroadcastUnsupported) || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Errorf("error = %v, want ErrBroadcastUnsupported naming the backend", err)
	}
}

// queueExists asks the broker, from a connection of its own, whether queue
// exists. A viewer's queue is exclusive to the viewer's connection, so the
// broker answers "locked" while it exists and "not found" once it is gone.
func queueExists(t *testing.T, amqpURL, queue string) bool {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()

	_, err = ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	var amqpErr *amqp091.Error
	switch {
	case err == nil, errors.As(err, &amqpErr) && amqpErr.Code == amqp091.ResourceLocked:
		return true
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound:
		return false
	}
	t.Fatalf("declaring queue %s passively: %v", queue, err)

	return false
}
