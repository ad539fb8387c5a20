package broker

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/events"
)

// marshaler is Watermill's AMQP marshaler made safe for anything a queue can
// hold. Watermill's own rejects a delivery whose headers are not all strings,
// which the broker's own headers (x-death, x-delivery-count) never are, and a
// rejected delivery is requeued and rejected again forever. This one always
// decodes: it keeps non-string headers as text, falls back to the AMQP
// message-id for the event ID, and records what the broker says about
// redelivery.
type marshaler struct{}

func (marshaler) Marshal(msg *message.Message) (amqp091.Publishing, error) {
	p, err := amqp.DefaultMarshaler{}.Marshal(msg)
	if err != nil {
		return p, err
	}
	p.MessageId = msg.UUID

	return p, nil
}

func (marshaler) Unmarshal(d amqp091.Delivery) (*message.Message, error) {
	id, _ := d.Headers[amqp.DefaultMessageUUIDHeaderKey].(string)
	if id == "" {
		id = d.MessageId
	}
	if id == "" {
		// Not sent by a millrace publisher: give it an ID so it can still be
		// handled (or parked) and traced.
		id = uuid.NewString()
	}

	msg := message.NewMessage(id, d.Body)
	for key, value := range d.Headers {
		if key == amqp.DefaultMessageUUIDHeaderKey {
			continue
		}
		if s, ok := value.(string); ok {
			msg.Metadata.Set(key, s)
		} else {
			msg.Metadata.Set(key, fmt.Sprint(value))
		}
	}

	msg.Metadata.Set(events.MetaRedelivered, strconv.FormatBool(d.Redelivered))
	// Quorum queues count earlier deliveries (see earlierDeliveries).
	if n, ok := earlierDeliveries(d.Headers); ok {
		msg.Metadata.Set(events.MetaDeliveryAttempt, strconv.FormatInt(n+1, 10))
	} else if !d.Redelivered {
		msg.Metadata.Set(events.MetaDeliveryAttempt, "1")
	}

	return msg, nil
}
