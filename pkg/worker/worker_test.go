package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/config"
)

func TestTheRouterRetriesFailuresAndPanicsThenAcks(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		failWith func(attempt int32) error
	}{
		{name: "a handler that fails twice then succeeds", failWith: func(attempt int32) error {
			if attempt <= 2 {
				return errors.New("transient")
			}

			return nil
		}},
		{name: "a handler that panics once then succeeds", failWith: func(attempt int32) error {
			if attempt == 1 {
				panic("boom")
			}

			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Consumer.Retry.InitialInterval = time.Millisecond
			cfg.Consumer.Retry.MaxInterval = 5 * time.Millisecond

			// Publish returns only once the router has acked the event.
			pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, nil)
			router, err := NewRouter(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}

			var attempts atomic.Int32
			done := make(chan struct{})
			router.AddConsumerHandler("h", "stuff", pubSub, func(*message.Message) error {
				n := attempts.Add(1)
				if err := tt.failWith(n); err != nil {
					return err
				}
				close(done)

				return nil
			})
			go func() { _ = router.Run(context.Background()) }()
			t.Cleanup(func() { _ = router.Close() })
			<-router.Running()

			acked := make(chan error, 1)
			go func() { acked <- pubSub.Publish("stuff", message.NewMessage("1", []byte("Hello World"))) }()

			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("handler never succeeded after %d attempts", attempts.Load())
			}
			if n := attempts.Load(); n > 3 {
				t.Errorf("handler ran %d times, want it to stop at its first success", n)
			}
			select {
			case err := <-acked:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the event was not acked after the handler succeeded")
			}
		})
	}
}
