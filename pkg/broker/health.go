package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill-amqp/v2/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
)

// ErrNotConnected is the readiness answer while the broker connection is
// down; the backend keeps reconnecting on its own.
var ErrNotConnected = errors.New("not connected to the broker (reconnecting)")

// ReadyCheck returns a readiness check for pubsub, a publisher (group "")
// or a subscriber of group built by this package: it passes while the
// connection is up and the topology the service needs (the topic's exchange
// and the queue of every configured group, or of its own group) can be
// declared. Declaring is idempotent and also restores a topology lost with
// the broker's data. ok is false for a backend without such a check.
//
// Warning: watermill-amqp swaps the channel behind IsConnected without a
// lock when it reconnects, so the race detector may report the check's read
// during a reconnect; the read itself only ever sees the old or new channel.
func ReadyCheck(cfg config.Config, group string, pubsub any) (check func(context.Context) error, ok bool) {
	if d, isDraining := pubsub.(*drainingSubscriber); isDraining {
		pubsub = d.inner
	}

	// live returns the connection to check, or ErrNotConnected.
	var live func(ctx context.Context) (*amqp091.Connection, error)
	groups := cfg.Groups
	switch v := pubsub.(type) {
	case *confirmPublisher:
		// It reconnects on demand; asking for readiness is such a demand,
		// so the publisher is connected again before the next request.
		live = func(ctx context.Context) (*amqp091.Connection, error) {
			conn, err := v.liveConnection(ctx)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNotConnected, err)
			}

			return conn, nil
		}
	case *amqp.Subscriber:
		live = func(context.Context) (*amqp091.Connection, error) {
			if !v.IsConnected() {
				return nil, ErrNotConnected
			}

			return v.Connection(), nil
		}
		groups = []string{group}
	default:
		return nil, false
	}

	c := amqpConfig(cfg, group)

	return shareInFlight(func(ctx context.Context) error {
		conn, err := live(ctx)
		if err != nil {
			return err
		}

		return declareAMQPTopologyOn(conn, c, cfg.Topic, groups)
	}), true
}

// flight is one run of a check, the ctx it runs with and, once done is
// closed, its result.
type flight struct {
	ctx  context.Context
	done chan struct{}
	err  error
}

// shareInFlight wraps check so that at most one run is in flight: a caller
// that arrives while one runs waits for that run's result instead of starting
// another, each caller bounded by its own ctx. A connection that died without
// the client noticing yet can block a declare until the heartbeat times out;
// callers still answer by their deadline and the run finishes in the
// background. A run whose ctx (its starter's) has ended is no answer for a
// caller whose ctx is still live: that caller starts a run of its own.
func shareInFlight(check func(context.Context) error) func(context.Context) error {
	var (
		mu      sync.Mutex
		current *flight
	)

	return func(ctx context.Context) error {
		for {
			mu.Lock()
			f := current
			if f == nil {
				f = &flight{ctx: ctx, done: make(chan struct{})}
				current = f
				go func() {
					f.err = check(ctx)
					mu.Lock()
					current = nil
					mu.Unlock()
					close(f.done)
				}()
			}
			mu.Unlock()

			select {
			case <-f.done:
				if f.err != nil && f.ctx.Err() != nil && ctx.Err() == nil {
					continue
				}

				return f.err
			case <-ctx.Done():
				return fmt.Errorf("declaring topology: %w", ctx.Err())
			}
		}
	}
}
