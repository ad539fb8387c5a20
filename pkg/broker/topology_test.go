package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/brokertest"
)

func TestThePublisherDeclaresAGroupsQueueAgainWhenItIsDeleted(t *testing.T) {
	url := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, url, topic, QueueName(topic, "a"), QueueName(topic, "b"))
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	pub, err := NewPublisher(t.Context(), testConfig(url, topic, "a", "b"), logger)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(QueueName(topic, "b"), false, false, false); err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()

	deadline := time.Now().Add(3 * topologyCheckInterval)
	for !queueExists(t, url, QueueName(topic, "b")) {
		if time.Now().After(deadline) {
			t.Fatalf("queue of group b not declared again within %s", 3*topologyCheckInterval)
		}
		time.Sleep(100 * time.Millisecond)
	}
	eventuallyLogged := time.Now().Add(2 * time.Second)
	for !strings.Contains(logs.String(), "missing_groups=[b]") {
		if time.Now().After(eventuallyLogged) {
			t.Fatalf("no warning names the group whose queue was missing:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe to write from the publisher's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}
