// Package audit is the delivery audit trail: the small records the publisher
// and the consumers send to the audit topic (an event was published, handled
// or parked), and the check that tells, from those records, whether every
// consumer type handled every event exactly once.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/millrace/millrace/pkg/events"
)

// Kind says what happened to an event.
type Kind string

// The kinds of record.
const (
	// KindPublished: the publisher had the event confirmed by the broker.
	KindPublished Kind = "published"
	// KindHandled: an instance of a consumer type handled the event successfully.
	KindHandled Kind = "handled"
	// KindParked: a consumer type gave up on the event and set it aside in its
	// poison queue, unhandled.
	KindParked Kind = "parked"
)

// PreviewBytes is the most of an event's body a record carries.
const PreviewBytes = 120

// Record is one line of the audit trail, sent as JSON.
type Record struct {
	// ID is unique per record, so that a record seen twice counts once.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// EventID is the event's ID (its Watermill UUID).
	EventID string `json:"event_id"`
	// Group is the consumer type (handled and parked records).
	Group string `json:"group,omitempty"`
	// Instance names the process that sent the record: its PID.
	Instance string `json:"instance,omitempty"`
	// Attempt counts deliveries of the event to Group, from 1; 0 when the
	// backend does not count them.
	Attempt int `json:"attempt,omitempty"`
	// Redelivered is true when the broker had delivered the event before.
	Redelivered bool `json:"redelivered,omitempty"`
	// At is when the record was made.
	At time.Time `json:"at"`
	// Body is the start of the event's body (published records), at most
	// PreviewBytes, cut at a character boundary.
	Body string `json:"body,omitempty"`
}

// Published is the record of msg having been published by instance.
func Published(msg *message.Message, instance string, at time.Time) Record {
	return Record{
		ID:       uuid.NewString(),
		Kind:     KindPublished,
		EventID:  msg.UUID,
		Instance: instance,
		At:       at.UTC(),
		Body:     Preview(msg.Payload),
	}
}

// Handled is the record of msg having been handled by instance of group.
// Attempt and Redelivered come from the metadata the backend set on delivery.
func Handled(msg *message.Message, group, instance string, at time.Time) Record {
	r := Record{
		ID:       uuid.NewString(),
		Kind:     KindHandled,
		EventID:  msg.UUID,
		Group:    group,
		Instance: instance,
		At:       at.UTC(),
	}
	r.Attempt, _ = strconv.Atoi(msg.Metadata.Get(events.MetaDeliveryAttempt))
	r.Redelivered = msg.Metadata.Get(events.MetaRedelivered) == "true"

	return r
}

// Parked is the record of msg having been set aside, unhandled, by an
// instance of group. The poison-queue middleware sends it.
func Parked(msg *message.Message, group, instance string, at time.Time) Record {
	r := Handled(msg, group, instance, at)
	r.Kind = KindParked

	return r
}

// Preview returns the start of body, at most PreviewBytes, as valid UTF-8.
func Preview(body []byte) string {
	if len(body) > PreviewBytes {
		body = body[:PreviewBytes]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
	}

	return string(body)
}

// IsRedelivery tells whether the record is for a second or later delivery.
func (r Record) IsRedelivery() bool {
	return r.Redelivered || r.Attempt > 1
}

// Message encodes r as a Watermill message whose UUID is the record's ID.
func (r Record) Message() (*message.Message, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding audit record: %w", err)
	}
	msg := message.NewMessage(r.ID, payload)
	msg.Metadata.Set(events.MetaContentType, "application/json")

	return msg, nil
}

// ErrBadRecord is returned by Parse for a message that is not a valid record.
var ErrBadRecord = errors.New("not an audit record")

// Parse decodes and checks a record sent by Record.Message.
func Parse(payload []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}

	var problems []error
	if r.ID == "" {
		problems = append(problems, errors.New("no id"))
	}
	if r.EventID == "" {
		problems = append(problems, errors.New("no event_id"))
	}
	switch r.Kind {
	case KindPublished:
	case KindHandled, KindParked:
		if r.Group == "" {
			problems = append(problems, fmt.Errorf("a %s record without a group", r.Kind))
		}
	default:
		problems = append(problems, fmt.Errorf("unknown kind %q", r.Kind))
	}
	if len(problems) > 0 {
		return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, errors.Join(problems...))
	}

	return r, nil
}
