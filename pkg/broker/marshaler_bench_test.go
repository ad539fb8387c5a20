package broker

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/events"
)

// BenchmarkMarshalerRoundTrip is the AMQP encoding of one event on publish
// and its decoding on delivery.
func BenchmarkMarshalerRoundTrip(b *testing.B) {
	msg := events.New([]byte("bench 1 123456 1733300000000000000"), "text/plain", time.Now())
	var m marshaler

	b.ReportAllocs()
	for b.Loop() {
		p, err := m.Marshal(msg)
		if err != nil {
			b.Fatal(err)
		}
		d := amqp091.Delivery{Headers: p.Headers, MessageId: p.MessageId, Body: p.Body}
		if _, err := m.Unmarshal(d); err != nil {
			b.Fatal(err)
		}
	}
}
