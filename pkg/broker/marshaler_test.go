package broker

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/events"
)

func TestTheMarshalerRoundTripsAnEvent(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("event-1", []byte("Hello\x00World\r\n"))
	msg.Metadata.Set(events.MetaPublishedAt, "2026-12-04T10:00:00Z")

	p, err := marshaler{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageId != "event-1" || p.DeliveryMode != amqp091.Persistent {
		t.Errorf("publishing has message-id %q and delivery mode %d, want event-1 and persistent", p.MessageId, p.DeliveryMode)
	}

	got, err := marshaler{}.Unmarshal(amqp091.Delivery{Headers: p.Headers, Body: p.Body, MessageId: p.MessageId})
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != "event-1" || string(got.Payload) != string(msg.Payload) {
		t.Errorf("decoded %q %q, want event-1 and the same payload", got.UUID, got.Payload)
	}
	if got.Metadata.Get(events.MetaPublishedAt) != "2026-12-04T10:00:00Z" {
		t.Errorf("metadata lost: %v", got.Metadata)
	}
	if got.Metadata.Get(events.MetaDeliveryAttempt) != "1" || got.Metadata.Get(events.MetaRedelivered) != "false" {
		t.Errorf("a first delivery should be attempt 1, not redelivered: %v", got.Metadata)
	}
}

func TestTheMarshalerDecodesWhatOthersPutInAQueue(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		delivery    amqp091.Delivery
		wantID      string
		wantAttempt string
		wantMeta    map[string]string
	}{
		{
			name:     "no ID header: the AMQP message-id is used",
			delivery: amqp091.Delivery{MessageId: "from-message-id", Body: []byte("x")},
			wantID:   "from-message-id", wantAttempt: "1",
		},
		{
			name: "headers the broker adds when dead-lettering are not strings",
			delivery: amqp091.Delivery{
				Headers: amqp091.Table{
					amqp.DefaultMessageUUIDHeaderKey: "event-2",
					"x-death":                        []any{amqp091.Table{"count": int64(1), "queue": "q"}},
					"x-first-death-reason":           "rejected",
					"count":                          int64(3),
				},
				Redelivered: true,
				Body:        []byte("x"),
			},
			wantID:   "event-2",
			wantMeta: map[string]string{"x-first-death-reason": "rejected", "count": "3", events.MetaRedelivered: "true"},
		},
		{
			name: "a quorum queue counts earlier deliveries",
			delivery: amqp091.Delivery{
				Headers:     amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: "event-3", "x-delivery-count": int64(2)},
				Redelivered: true,
			},
			wantID: "event-3", wantAttempt: "3",
		},
		{
			name:     "an ID header that is not a string",
			delivery: amqp091.Delivery{Headers: amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: int64(7)}, MessageId: "fallback"},
			wantID:   "fallback", wantAttempt: "1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := marshaler{}.Unmarshal(tt.delivery)
			if err != nil {
				t.Fatalf("Unmarshal failed: %v", err)
			}
			if got.UUID != tt.wantID {
				t.Errorf("ID = %q, want %q", got.UUID, tt.wantID)
			}
			if a := got.Metadata.Get(events.MetaDeliveryAttempt); a != tt.wantAttempt {
				t.Errorf("delivery_attempt = %q, want %q", a, tt.wantAttempt)
			}
			for k, v := range tt.wantMeta {
				if got.Metadata.Get(k) != v {
					t.Errorf("metadata %s = %q, want %q", k, got.Metadata.Get(k), v)
				}
			}
		})
	}
}

func TestAMessageWithNoIDAtAllStillGetsOne(t *testing.T) {
	t.Parallel()
	a, _ := marshaler{}.Unmarshal(amqp091.Delivery{Body: []byte("x")})
	b, _ := marshaler{}.Unmarshal(amqp091.Delivery{Body: []byte("x")})

	if a.UUID == "" || a.UUID == b.UUID {
		t.Errorf("IDs %q and %q: want a fresh non-empty ID for each", a.UUID, b.UUID)
	}
}

func TestDeliveryAttemptFromHeaders(t *testing.T) {
	tests := []struct {
		name        string
		headers     amqp091.Table
		redelivered bool
		want        string
	}{
		{"a first delivery is attempt 1", nil, false, "1"},
		{"a classic redelivery has no count", nil, true, ""},
		{"a quorum redelivery counts from x-delivery-count", amqp091.Table{"x-delivery-count": int64(2)}, true, "3"},
		{"a smaller integer type counts too", amqp091.Table{"x-delivery-count": int32(1)}, true, "2"},
		{
			"x-acquired-count wins over the failures-only x-delivery-count",
			amqp091.Table{"x-delivery-count": int64(0), "x-acquired-count": int64(4)}, true, "5",
		},
		{"a count that is not a number is ignored", amqp091.Table{"x-delivery-count": "two"}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := marshaler{}.Unmarshal(amqp091.Delivery{
				MessageId:   "event-1",
				Headers:     tt.headers,
				Redelivered: tt.redelivered,
				Body:        []byte("x"),
			})
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if got := msg.Metadata.Get(events.MetaDeliveryAttempt); got != tt.want {
				t.Errorf("delivery_attempt = %q, want %q", got, tt.want)
			}
		})
	}
}
