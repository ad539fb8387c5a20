// Package brokertest finds the brokers that tests run against and gives each
// test a topic of its own. A test whose broker is not running is skipped with
// a message saying how to start it, except under CI=true, where it fails: CI
// must never pass by skipping.
package brokertest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// AMQPURL is the RabbitMQ the tests use: $MILLRACE_TEST_AMQP_URL, or the
// local broker with the default guest account.
func AMQPURL() string {
	if u := os.Getenv("MILLRACE_TEST_AMQP_URL"); u != "" {
		return u
	}

	return "amqp://guest:guest@127.0.0.1:5672/"
}

// RequireAMQP returns the test broker's URL, or skips (fails under CI) when
// nothing answers there.
func RequireAMQP(t testing.TB) string {
	t.Helper()
	u := AMQPURL()
	Require(t, "RabbitMQ", hostPort(u, "5672"),
		"start it with `rabbitmq-server -detached` (or see README: Getting RabbitMQ)")

	return u
}

// Require skips the test, or fails it under CI=true, unless a server answers
// on addr.
func Require(t testing.TB, name, addr, howToStart string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = conn.Close()

		return
	}

	msg := fmt.Sprintf("%s is not reachable on %s (%v); %s", name, addr, err, howToStart)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Topic returns a topic no other test run uses.
func Topic(t testing.TB) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}

	return "test-" + name + "-" + uuid.NewString()[:8]
}

// DeleteAMQPTopology removes, when the test ends, the topic's exchange, its
// audit exchange ("<topic>.audit", where the services record what they did)
// and the given queues with their poison queues, so that test runs leave
// nothing behind on the broker.
func DeleteAMQPTopology(t testing.TB, amqpURL, topic string, queues ...string) {
	t.Helper()
	t.Cleanup(func() {
		conn, err := amqp091.Dial(amqpURL)
		if err != nil {
			t.Logf("cleaning up topic %s: %v", topic, err)

			return
		}
		defer conn.Close()

		ch, err := conn.Channel()
		if err != nil {
			t.Logf("cleaning up topic %s: %v", topic, err)

			return
		}
		defer ch.Close()

		for _, q := range queues {
			// Deleting a queue that does not exist succeeds.
			if _, err := ch.QueueDelete(q+".poison", false, false, false); err != nil {
				t.Logf("deleting queue %s.poison: %v", q, err)
			}
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Logf("deleting queue %s: %v", q, err)
			}
		}
		for _, exchange := range []string{topic, topic + ".audit"} {
			if err := ch.ExchangeDelete(exchange, false, false); err != nil {
				t.Logf("deleting exchange %s: %v", exchange, err)
			}
		}
	})
}

// QueueDepth returns how many messages wait in queue on the broker at
// amqpURL, not counting those handed out to a consumer; 0 while the queue
// does not exist (yet).
func QueueDepth(t testing.TB, amqpURL, queue string) int {
	t.Helper()
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dialing: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("opening channel: %v", err)
	}
	defer ch.Close()

	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
		return 0
	}
	if err != nil {
		t.Fatalf("inspecting queue %s: %v", queue, err)
	}

	return q.Messages
}

func hostPort(rawURL, defaultPort string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defaultPort)
	}

	return u.Host
}
