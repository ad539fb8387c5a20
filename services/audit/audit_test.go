package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/audit"
)

var groups = []string{"consumer", "extraspecialconsumer"}

func record(t *testing.T, id string, kind audit.Kind, event, group string) *message.Message {
	t.Helper()
	msg, err := audit.Record{ID: id, Kind: kind, EventID: event, Group: group, At: time.Now()}.Message()
	if err != nil {
		t.Fatal(err)
	}

	return msg
}

func TestCollectStopsOnceTheExpectedEventsAreAllHandled(t *testing.T) {
	t.Parallel()
	msgs := make(chan *message.Message, 10)
	msgs <- record(t, "1", audit.KindPublished, "e1", "")
	msgs <- record(t, "2", audit.KindHandled, "e1", "consumer")
	msgs <- record(t, "3", audit.KindHandled, "e1", "extraspecialconsumer")

	start := time.Now()
	got := collect(context.Background(), msgs, groups,
		options{events: 1, settle: 10 * time.Millisecond}, nil, slog.New(slog.DiscardHandler))

	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("collect took %s, want it to stop once the event was handled", elapsed)
	}
	if len(got) != 3 {
		t.Errorf("collected %d records, want 3", len(got))
	}
}

func TestAfterTheWindowOnlyLateHandlingOfKnownEventsIsKept(t *testing.T) {
	t.Parallel()
	msgs := make(chan *message.Message)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	windowEnd := make(chan time.Time)
	done := make(chan []audit.Record, 1)
	go func() {
		done <- collect(ctx, msgs, groups, options{settle: time.Hour}, windowEnd, slog.New(slog.DiscardHandler))
	}()

	msgs <- record(t, "1", audit.KindPublished, "e1", "")
	msgs <- record(t, "bad", audit.KindHandled, "", "") // not a valid record: skipped
	close(windowEnd)
	// Read in the window or after it, this one is kept; the next ones are
	// read after it.
	msgs <- record(t, "2", audit.KindHandled, "e1", "consumer")
	msgs <- record(t, "3", audit.KindPublished, "e2", "")
	msgs <- record(t, "4", audit.KindHandled, "e2", "consumer")
	cancel() // Ctrl-C ends the settle period

	got := <-done
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "1,2" {
		t.Errorf("kept records %v, want [1 2]: the window's event and its late handling only", ids)
	}
}

func TestFlagsAreChecked(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "a zero window", args: []string{"-window", "0s"}, want: "-window must be positive"},
		{name: "negative events", args: []string{"-events", "-1"}, want: "-events not negative"},
		{name: "a stray argument", args: []string{"now"}, want: `unexpected arguments ["now"]`},
		{name: "an unknown flag", args: []string{"-forever"}, want: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer

			err := runMain(context.Background(), tt.args, nil, &stdout, &stderr)

			if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
				t.Errorf("error %v (stderr %q), want it to mention %q", err, stderr.String(), tt.want)
			}
		})
	}
}
