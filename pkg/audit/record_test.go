package audit

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/events"
)

func TestAHandledRecordCarriesTheDeliveryFromMetadata(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("event-1", []byte("Hello World"))
	msg.Metadata.Set(events.MetaDeliveryAttempt, "3")
	msg.Metadata.Set(events.MetaRedelivered, "true")

	r := Handled(msg, "consumer", "4242", t0)

	if r.Kind != KindHandled || r.EventID != "event-1" || r.Group != "consumer" || r.Instance != "4242" {
		t.Errorf("record = %+v", r)
	}
	if r.Attempt != 3 || !r.Redelivered || !r.IsRedelivery() {
		t.Errorf("attempt %d, redelivered %v; want 3, true", r.Attempt, r.Redelivered)
	}
}

func TestARecordSurvivesTheTripThroughAMessage(t *testing.T) {
	t.Parallel()
	want := Published(message.NewMessage("event-1", []byte("Hello World")), "4242", t0)

	msg, err := want.Message()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(msg.Payload)
	if err != nil {
		t.Fatal(err)
	}

	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if msg.UUID != want.ID {
		t.Errorf("message UUID %s, want the record ID %s", msg.UUID, want.ID)
	}
}

func TestParseRejectsWhatIsNotARecord(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, payload, want string
	}{
		{name: "not JSON", payload: "Hello World", want: "invalid character"},
		{name: "no IDs", payload: `{"kind":"published"}`, want: "no id"},
		{name: "an unknown kind", payload: `{"id":"1","event_id":"e","kind":"eaten"}`, want: `unknown kind "eaten"`},
		{name: "a handled record without a group", payload: `{"id":"1","event_id":"e","kind":"handled"}`, want: "without a group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.payload))
			if !errors.Is(err, ErrBadRecord) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() = %v, want ErrBadRecord mentioning %q", err, tt.want)
			}
		})
	}
}

func TestPreviewCutsLongBodiesAtACharacterBoundary(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("é", PreviewBytes) // two bytes each

	got := Preview([]byte(body))

	if len(got) > PreviewBytes || !utf8.ValidString(got) || !strings.HasPrefix(body, got) {
		t.Errorf("preview of %d bytes is %d bytes, valid %v", len(body), len(got), utf8.ValidString(got))
	}
	if Preview([]byte("short")) != "short" {
		t.Error("a short body is not kept whole")
	}
}

func TestAParkedRecordNamesTheTypeThatGaveUp(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("event-1", []byte("poison"))
	msg.Metadata.Set(events.MetaDeliveryAttempt, "5")

	r := Parked(msg, "extraspecialconsumer", "7", t0)

	if r.Kind != KindParked || r.Group != "extraspecialconsumer" || r.Attempt != 5 || r.ID == "" {
		t.Errorf("record = %+v", r)
	}
	if _, err := Parse(mustPayload(t, r)); err != nil {
		t.Errorf("a parked record does not parse: %v", err)
	}
}

func mustPayload(t *testing.T, r Record) []byte {
	t.Helper()
	msg, err := r.Message()
	if err != nil {
		t.Fatal(err)
	}

	return msg.Payload
}
