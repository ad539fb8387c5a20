package broker

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestRedisMarshallerReadsAnyEntry(t *testing.T) {
	t.Parallel()
	sent := message.NewMessage("7f0c1b8e-5a5e-4b5e-9a57-1c1d3f0e2a11", []byte("Hello World"))
	sent.Metadata.Set("published_at", "2026-01-02T03:04:05Z")
	ours, err := redisMarshaller{}.Marshal("stuff", sent)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	// Redis gives every field back as a string.
	asRead := make(map[string]any, len(ours))
	for k, v := range ours {
		switch v := v.(type) {
		case []byte:
			asRead[k] = string(v)
		default:
			asRead[k] = v
		}
	}

	cases := []struct {
		name        string
		values      map[string]any
		wantID      string
		wantPayload string
		wantMeta    string
	}{
		{"an entry written by the publisher keeps its ID, payload and metadata", asRead,
			sent.UUID, "Hello World", "2026-01-02T03:04:05Z"},
		{"an entry without an ID gets a fresh one", map[string]any{"payload": "x"}, "", "x", ""},
		{"an entry with undecodable metadata keeps its payload", map[string]any{
			"_watermill_message_uuid": "id-1", "payload": "y", "metadata": "\xff\x00not msgpack"}, "id-1", "y", ""},
		{"an entry with fields of other types is still read", map[string]any{
			"_watermill_message_uuid": 42, "payload": 7}, "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			msg, err := redisMarshaller{}.Unmarshal(c.values)
			if err != nil {
				t.Fatalf("unmarshal failed: %v", err)
			}
			if c.wantID != "" && msg.UUID != c.wantID {
				t.Errorf("ID %q, want %q", msg.UUID, c.wantID)
			}
			if msg.UUID == "" {
				t.Error("empty ID")
			}
			if string(msg.Payload) != c.wantPayload {
				t.Errorf("payload %q, want %q", msg.Payload, c.wantPayload)
			}
			if got := msg.Metadata.Get("published_at"); got != c.wantMeta {
				t.Errorf("published_at %q, want %q", got, c.wantMeta)
			}
		})
	}
}
