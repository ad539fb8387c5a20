// Package events defines the event the publisher sends and the consumers
// handle: its ID, payload and metadata keys, the same on every backend.
package events

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Metadata keys every event carries.
const (
	// MetaPublishedAt is when the publisher accepted the event, RFC 3339 with nanoseconds, UTC.
	MetaPublishedAt = "published_at"
	// MetaContentType is the Content-Type the HTTP client declared, if any.
	MetaContentType = "content_type"
)

// Metadata keys a backend adds on delivery, when it knows them.
const (
	// MetaRedelivered is "true" when the broker has delivered this event before.
	MetaRedelivered = "redelivered"
	// MetaDeliveryAttempt counts deliveries of this event to its consumer
	// group, starting at 1, on backends that count them.
	MetaDeliveryAttempt = "delivery_attempt"
)

// New builds an event with a fresh unique ID, the body bytes unchanged as its
// payload, and the time it was published.
func New(body []byte, contentType string, now time.Time) *message.Message {
	msg := message.NewMessage(uuid.NewString(), body)
	msg.Metadata.Set(MetaPublishedAt, now.UTC().Format(time.RFC3339Nano))
	if contentType != "" {
		msg.Metadata.Set(MetaContentType, contentType)
	}

	return msg
}

// PublishedAt reads the time the event was published; ok is false when the
// event does not carry a valid one.
func PublishedAt(msg *message.Message) (t time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(MetaPublishedAt))

	return t, err == nil
}
