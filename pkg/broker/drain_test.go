package broker

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// fakeSubscriber hands out the messages sent on feed and records when it is closed.
type fakeSubscriber struct {
	feed   chan *message.Message
	mu     sync.Mutex
	closed bool
	ctxErr func() error
}

func (f *fakeSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	f.ctxErr = ctx.Err

	return f.feed, nil
}

func (f *fakeSubscriber) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true

	return nil
}

func (f *fakeSubscriber) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()

	return f.closed
}

func TestCloseWaitsForTheEventInFlightBeforeClosingTheSubscriberUnderneath(t *testing.T) {
	t.Parallel()
	inner := &fakeSubscriber{feed: make(chan *message.Message, 1)}
	sub := newDrainingSubscriber(inner, 5*time.Second, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	out, err := sub.Subscribe(ctx, "topic")
	if err != nil {
		t.Fatal(err)
	}

	inner.feed <- message.NewMessage("1", []byte("x"))
	msg := <-out
	// The router cancels the subscription's context when it starts closing.
	cancel()

	closed := make(chan struct{})
	go func() {
		_ = sub.Close()
		close(closed)
	}()

	select {
	case <-closed:
		t.Fatal("Close returned while an event was still being handled")
	case <-time.After(100 * time.Millisecond):
	}
	if inner.isClosed() {
		t.Fatal("the inner subscriber was closed with an event in flight")
	}
	if inner.ctxErr() != nil {
		t.Fatal("the inner subscription's context was cancelled with an event in flight")
	}

	msg.Ack()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return after the event was acked")
	}
	if !inner.isClosed() {
		t.Error("the inner subscriber was not closed")
	}
	if _, open := <-out; open {
		t.Error("the output channel is still open after Close")
	}
}

func TestCloseGivesUpOnAStuckHandlerAfterTheTimeout(t *testing.T) {
	t.Parallel()
	inner := &fakeSubscriber{feed: make(chan *message.Message, 1)}
	sub := newDrainingSubscriber(inner, 100*time.Millisecond, slog.New(slog.DiscardHandler))
	out, err := sub.Subscribe(context.Background(), "topic")
	if err != nil {
		t.Fatal(err)
	}
	inner.feed <- message.NewMessage("1", []byte("x"))
	<-out // handed to a handler that never finishes

	start := time.Now()
	_ = sub.Close()

	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Close took %s, want about the 100ms timeout", elapsed)
	}
	if !inner.isClosed() {
		t.Error("the inner subscriber was not closed")
	}
}

func TestAnEventNotYetHandedOutIsNackedOnClose(t *testing.T) {
	t.Parallel()
	inner := &fakeSubscriber{feed: make(chan *message.Message, 1)}
	sub := newDrainingSubscriber(inner, time.Second, slog.New(slog.DiscardHandler))
	if _, err := sub.Subscribe(context.Background(), "topic"); err != nil {
		t.Fatal(err)
	}

	// Nobody reads the output: the event stays with the forwarder.
	msg := message.NewMessage("1", []byte("x"))
	inner.feed <- msg
	deadline := time.After(5 * time.Second)
	for len(inner.feed) > 0 {
		select {
		case <-deadline:
			t.Fatal("the forwarder never took the event")
		case <-time.After(time.Millisecond):
		}
	}
	_ = sub.Close()

	select {
	case <-msg.Nacked():
	case <-time.After(5 * time.Second):
		t.Fatal("an event that never reached a handler was not given back")
	}
}
