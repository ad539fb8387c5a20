package observe

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/events"
)

// gathered reads one series of reg: a counter's value or a histogram's count.
func gathered(t *testing.T, reg *Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == k && l.GetValue() == v
				}
				if !found {
					continue series
				}
			}
			if m.Counter != nil {
				sum += m.Counter.GetValue()
			}
			if m.Histogram != nil {
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}

	return sum
}

// levels counts the JSON log lines per level.
func levels(t *testing.T, logs *bytes.Buffer) map[string]int {
	t.Helper()
	n := map[string]int{}
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		n[rec["level"].(string)]++
	}

	return n
}

func TestEventMiddleware(t *testing.T) {
	failing := errors.New("boom")
	tests := []struct {
		name      string
		failures  int  // attempts that fail before one succeeds
		poison    bool // a poison queue sits inside the observer
		stamped   bool // the event carries published_at
		result    string
		retries   float64
		endToEnd  float64
		warnings  int
		errorLogs int
	}{
		{name: "a handler that succeeds is counted ok with one end-to-end sample",
			stamped: true, result: ResultOK, endToEnd: 1},
		{name: "a handler that fails once is retried, counted ok, and its failure logged once at Warn",
			failures: 1, stamped: true, result: ResultOK, retries: 1, endToEnd: 1, warnings: 1},
		{name: "a handler that always fails is counted error and its final failure logged once at Error",
			failures: 100, stamped: true, result: ResultError, retries: 2, warnings: 2, errorLogs: 1},
		{name: "an event the poison queue parks is counted poisoned and logged once at Error",
			failures: 100, poison: true, stamped: true, result: ResultPoisoned, retries: 2, warnings: 2, errorLogs: 1},
		{name: "an event without published_at is counted but adds no latency sample",
			result: ResultOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := NewRegistry("test", 1)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewEventMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

			calls := 0
			handler := func(*message.Message) ([]*message.Message, error) {
				calls++
				if calls <= tt.failures {
					return nil, failing
				}

				return nil, nil
			}
			retry := middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond}
			chain := retry.Middleware(Attempts(handler))
			if tt.poison {
				pubsub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
				defer pubsub.Close()
				poison, err := middleware.PoisonQueue(pubsub, "poison")
				if err != nil {
					t.Fatal(err)
				}
				chain = poison(chain)
			}
			chain = m.Middleware("g", 2, logger)(chain)

			msg := message.NewMessage("event-1", []byte("body"))
			if tt.stamped {
				msg.Metadata.Set(events.MetaPublishedAt, time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano))
			}
			_, err = chain(msg)
			if (err != nil) != (tt.result == ResultError) {
				t.Fatalf("chain returned %v for result %s", err, tt.result)
			}

			for _, result := range []string{ResultOK, ResultError, ResultPoisoned} {
				want := 0.0
				if result == tt.result {
					want = 1
				}
				got := gathered(t, reg, "millrace_events_handled_total", map[string]string{"group": "g", "result": result})
				if got != want {
					t.Errorf("events_handled_total{result=%s} = %v, want %v", result, got, want)
				}
			}
			if got := gathered(t, reg, "millrace_event_retries_total", nil); got != tt.retries {
				t.Errorf("event_retries_total = %v, want %v", got, tt.retries)
			}
			if got := gathered(t, reg, "millrace_event_end_to_end_seconds", nil); got != tt.endToEnd {
				t.Errorf("event_end_to_end_seconds has %v samples, want %v", got, tt.endToEnd)
			}
			lv := levels(t, &logs)
			if lv["WARN"] != tt.warnings || lv["ERROR"] != tt.errorLogs {
				t.Errorf("logged %d Warn and %d Error lines, want %d and %d:\n%s",
					lv["WARN"], lv["ERROR"], tt.warnings, tt.errorLogs, logs.String())
			}
		})
	}
}

func TestEventAttrsNameTheEvent(t *testing.T) {
	msg := message.NewMessage("id-1", nil)
	middleware.SetCorrelationID("corr-1", msg)
	msg.Metadata.Set(events.MetaDeliveryAttempt, "2")

	attrs := map[string]any{}
	kv := EventAttrs(msg)
	for i := 0; i+1 < len(kv); i += 2 {
		attrs[kv[i].(string)] = kv[i+1]
	}
	want := map[string]any{"event_id": "id-1", "message_uuid": "id-1", "correlation_id": "corr-1", "delivery_attempt": "2"}
	for k, v := range want {
		if attrs[k] != v {
			t.Errorf("%s = %v, want %v", k, attrs[k], v)
		}
	}
}
