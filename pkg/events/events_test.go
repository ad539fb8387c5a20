package events

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestNewEventsCarryTheirBodyIDAndPublishTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))

	a := New([]byte("Hello World"), "text/plain", now)
	b := New([]byte("Hello World"), "", now)

	if a.UUID == "" || a.UUID == b.UUID {
		t.Errorf("IDs %q and %q: want a unique ID per event", a.UUID, b.UUID)
	}
	if string(a.Payload) != "Hello World" {
		t.Errorf("payload = %q", a.Payload)
	}
	if got, ok := PublishedAt(a); !ok || !got.Equal(now) {
		t.Errorf("PublishedAt = %v, %v; want %v", got, ok, now)
	}
	if a.Metadata.Get(MetaPublishedAt) != "2026-12-04T09:30:00.123456789Z" {
		t.Errorf("published_at = %q, want UTC with nanoseconds", a.Metadata.Get(MetaPublishedAt))
	}
	if _, set := b.Metadata[MetaContentType]; set {
		t.Error("content_type set although the request declared none")
	}
}

func TestPublishedAtRejectsAMissingOrBrokenTime(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("1", nil)
	if _, ok := PublishedAt(msg); ok {
		t.Error("ok for an event with no published_at")
	}
	msg.Metadata.Set(MetaPublishedAt, "yesterday")
	if _, ok := PublishedAt(msg); ok {
		t.Error("ok for an unparsable published_at")
	}
}
