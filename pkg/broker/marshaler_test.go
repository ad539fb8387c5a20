package broker

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/events"
)

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
