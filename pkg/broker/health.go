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

var errCheckBusy = errors.New("the previous check is still waiting for the broker")

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
	var busy sync.Mutex

	return func(ctx context.Context) error {
		// A connection that died without the client noticing yet can block a
		// declare until the heartbeat times out: answer by ctx's deadline and
		// let at most one such check wait in the background.
		if !busy.TryLock() {
			return errCheckBusy
		}
		done := make(chan error, 1)
		go func() {
			defer busy.Unlock()
			conn, err := live(ctx)
			if err == nil {
				err = declareAMQPTopologyOn(conn, c, cfg.Topic, groups)
			}
			done <- err
		}()

		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("declaring topology: %w", ctx.Err())
		}
	}, true
}
