package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/events"
)

// memoryCompletions is a completion log shared in memory, failing on demand.
type memoryCompletions struct {
	mu   sync.Mutex
	ids  map[string]bool
	fail error
}

func (m *memoryCompletions) Completed(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	return m.ids[id], m.fail
}

func (m *memoryCompletions) Record(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.ids[id] = true

	return nil
}

func TestARedeliveredEventCompletedByAnotherInstanceIsNotHandledAgain(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name         string
		sharedFails  error
		wantHandledB int
	}{
		{name: "the shared log knows instance A completed it", wantHandledB: 0},
		{name: "an unreachable shared log means handling it again, at least once", sharedFails: errors.New("down"),
			wantHandledB: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shared := &memoryCompletions{ids: map[string]bool{}}
			logger := slog.New(slog.DiscardHandler)
			var handledA, handledB int
			instanceA := skipCompleted(newCompletedIDs(10), shared, logger)(func(*message.Message) ([]*message.Message, error) {
				handledA++

				return nil, nil
			})
			instanceB := skipCompleted(newCompletedIDs(10), shared, logger)(func(*message.Message) ([]*message.Message, error) {
				handledB++

				return nil, nil
			})

			first := message.NewMessage("event-1", []byte("x"))
			first.Metadata.Set(events.MetaRedelivered, "false")
			if _, err := instanceA(first); err != nil {
				t.Fatal(err)
			}
			shared.mu.Lock()
			shared.fail = tt.sharedFails
			shared.mu.Unlock()

			// A's ack was lost with its connection: the broker gives the event to B.
			again := message.NewMessage("event-1", []byte("x"))
			again.Metadata.Set(events.MetaRedelivered, "true")
			if _, err := instanceB(again); err != nil {
				t.Fatal(err)
			}

			if handledA != 1 || handledB != tt.wantHandledB {
				t.Errorf("handled by A %d times and by B %d times, want 1 and %d", handledA, handledB, tt.wantHandledB)
			}
		})
	}
}

func TestTheRedisCompletionLogIsSharedByTheGroupOnly(t *testing.T) {
	url := brokertest.RequireRedis(t)
	topic := brokertest.Topic(t)
	ctx := t.Context()

	a, err := newRedisCompletions(ctx, url, topic, "group-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a2, err := newRedisCompletions(ctx, url, topic, "group-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	b, err := newRedisCompletions(ctx, url, topic, "group-b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Cleanup(func() { a.client.Del(context.Background(), a.prefix+"event-1") })

	if err := a.Record(ctx, "event-1"); err != nil {
		t.Fatal(err)
	}
	if done, err := a2.Completed(ctx, "event-1"); err != nil || !done {
		t.Errorf("another instance of the group: completed = %v, %v; want true", done, err)
	}
	if done, err := b.Completed(ctx, "event-1"); err != nil || done {
		t.Errorf("another group: completed = %v, %v; want false", done, err)
	}
	if done, err := a2.Completed(ctx, "event-2"); err != nil || done {
		t.Errorf("an event nobody completed: completed = %v, %v; want false", done, err)
	}
}

func TestAnUnreachableCompletionLogStopsTheStartWithAClearError(t *testing.T) {
	t.Parallel()
	_, err := newRedisCompletions(t.Context(), "redis://:s3cret@127.0.0.1:1/0", "t", "g")
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if got := err.Error(); !strings.Contains(got, "completed-events Redis redis://:xxxxx@127.0.0.1:1/0") || strings.Contains(got, "s3cret") {
		t.Errorf("error = %q, want the masked URL and no password", got)
	}
}
