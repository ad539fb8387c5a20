package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// drainingSubscriber makes Close graceful on every backend. Watermill's
// router closes its subscriber as soon as the router is asked to close, and
// most subscribers then nack the event a handler is still working on, so it
// is redelivered and handled a second time. This wrapper stops handing out
// new events, waits for the ones already handed out to be acked or nacked,
// and only then closes the subscriber underneath.
type drainingSubscriber struct {
	inner   message.Subscriber
	timeout time.Duration
	logger  *slog.Logger

	closing   chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	inFlight int
	idle     chan struct{} // closed and replaced as inFlight returns to 0
}

func newDrainingSubscriber(inner message.Subscriber, timeout time.Duration, logger *slog.Logger) *drainingSubscriber {
	return &drainingSubscriber{
		inner:   inner,
		timeout: timeout,
		logger:  logger,
		closing: make(chan struct{}),
		idle:    make(chan struct{}),
	}
}

// Subscribe subscribes the inner subscriber with a context that only Close
// ends, so that the router cancelling ctx on shutdown cannot cut short the
// events in flight; ctx still stops this subscription's hand-out.
func (s *drainingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := s.inner.Subscribe(context.WithoutCancel(ctx), topic)
	if err != nil {
		return nil, err
	}

	out := make(chan *message.Message)
	go s.forward(ctx, in, out)

	return out, nil
}

func (s *drainingSubscriber) forward(ctx context.Context, in <-chan *message.Message, out chan<- *message.Message) {
	defer close(out)
	for {
		var msg *message.Message
		select {
		case <-s.closing:
			return
		case <-ctx.Done():
			return
		case m, ok := <-in:
			if !ok {
				return
			}
			msg = m
		}

		s.track(msg)
		select {
		case out <- msg:
		case <-s.closing:
			// Never reached a handler: give it back for another instance.
			msg.Nack()

			return
		case <-ctx.Done():
			msg.Nack()

			return
		}
	}
}

// track counts msg as in flight until it is acked or nacked.
func (s *drainingSubscriber) track(msg *message.Message) {
	s.mu.Lock()
	s.inFlight++
	s.mu.Unlock()

	go func() {
		select {
		case <-msg.Acked():
		case <-msg.Nacked():
		}

		s.mu.Lock()
		defer s.mu.Unlock()
		s.inFlight--
		if s.inFlight == 0 {
			close(s.idle)
			s.idle = make(chan struct{})
		}
	}()
}

// Close stops handing out events, waits up to the shutdown timeout for those
// in flight, then closes the subscriber underneath.
func (s *drainingSubscriber) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)

		s.mu.Lock()
		n, idle := s.inFlight, s.idle
		s.mu.Unlock()

		if n > 0 {
			s.logger.Info("waiting for in-flight events", "in_flight", n, "timeout", s.timeout)
			select {
			case <-idle:
			case <-time.After(s.timeout):
				s.logger.Warn("shutdown timeout passed with events in flight; the broker will redeliver them",
					"timeout", s.timeout)
			}
			// The inner subscriber acks on its own goroutine after seeing the
			// ack; give it a moment to send the ack before its connection
			// closes, or the broker would redeliver an event already done.
			time.Sleep(50 * time.Millisecond)
		}
	})

	return s.inner.Close()
}
