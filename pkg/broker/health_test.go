package broker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

func TestReadyCheckIsOnlyOfferedForAMQP(t *testing.T) {
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()

	if _, ok := ReadyCheck(config.Default(), "consumer", pubsub); ok {
		t.Error("ReadyCheck offered a check for a GoChannel pub/sub, which has no broker connection")
	}
}

func TestReadyCheckAnswersConcurrentCallersOnAHealthyBroker(t *testing.T) {
	url := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, url, topic, QueueName(topic, "a"))
	cfg := testConfig(url, topic, "a")

	pub, err := NewPublisher(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	defer pub.Close()
	check, ok := ReadyCheck(cfg, "", pub)
	if !ok {
		t.Fatal("ReadyCheck offered no check for an AMQP publisher")
	}

	const callers = 16
	for round := range 5 {
		errs := make(chan error, callers)
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				errs <- check(ctx)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: a concurrent check on a healthy broker failed: %v", round, err)
			}
		}
	}
}

func TestShareInFlight(t *testing.T) {
	errBroker := errors.New("broker said no")

	tests := []struct {
		name   string
		result error
	}{
		{name: "callers during one run all get its success", result: nil},
		{name: "callers during one run all get its failure", result: errBroker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const callers = 8
				var runs atomic.Int32
				release := make(chan struct{})
				check := shareInFlight(func(context.Context) error {
					runs.Add(1)
					<-release

					return tt.result
				})

				errs := make(chan error, callers)
				for range callers {
					go func() { errs <- check(t.Context()) }()
				}
				synctest.Wait() // every caller is waiting on the run
				if n := runs.Load(); n != 1 {
					t.Errorf("runs in flight = %d, want 1", n)
				}
				close(release)

				for range callers {
					if err := <-errs; !errors.Is(err, tt.result) {
						t.Errorf("check = %v, want %v", err, tt.result)
					}
				}
			})
		})
	}
}

func TestShareInFlightBoundsEachCallerByItsOwnContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		check := shareInFlight(func(ctx context.Context) error {
			// The first run hangs like a declare on a dead connection
			// until its ctx ends; later runs pass.
			if runs.Add(1) == 1 {
				<-ctx.Done()

				return ctx.Err()
			}

			return nil
		})

		short, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		shortErr := make(chan error, 1)
		go func() { shortErr <- check(short) }()
		synctest.Wait()

		longErr := make(chan error, 1)
		go func() { longErr <- check(t.Context()) }()
		synctest.Wait() // the second caller waits on the first run

		if err := <-shortErr; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("caller whose ctx expired: check = %v, want deadline exceeded", err)
		}
		if err := <-longErr; err != nil {
			t.Errorf("caller with a live ctx after the first run's ctx expired: check = %v, want a run of its own that passes", err)
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("runs = %d, want 2", n)
		}
	})
}
