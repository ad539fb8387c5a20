package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
)

// Errors a confirmPublisher returns for an event the broker did not store.
var (
	// ErrNotConfirmed means the broker negatively acknowledged the event, or
	// the channel closed before it confirmed it.
	ErrNotConfirmed = errors.New("broker did not confirm the event")
	// ErrUnroutable means the broker confirmed the event but no queue was
	// bound to take it, so it was dropped.
	ErrUnroutable = errors.New("no queue took the event")
	// ErrPublisherClosed is returned by Publish after Close.
	ErrPublisherClosed = errors.New("publisher is closed")
)

// declareFunc declares the topology a publisher needs on a fresh connection.
type declareFunc func(ch *amqp091.Channel) error

// routeFunc maps a Watermill topic to the exchange and routing key to publish to.
type routeFunc func(topic string) (exchange, key string)

// toFanoutExchange publishes to the topic's fanout exchange.
func toFanoutExchange(topic string) (string, string) { return topic, "" }

// toQueue publishes straight to the queue named topic, through the default exchange.
func toQueue(topic string) (string, string) { return "", topic }

// confirmPublisher is a message.Publisher on RabbitMQ that returns only once
// the broker has confirmed every event as stored in at least one queue. It
// publishes with the mandatory flag and treats a returned (unroutable) event
// as a failure, honours the deadline of each message's context while it
// connects, publishes and waits for the confirm, keeps a pool of confirm
// channels for concurrent publishes, and reconnects on the next Publish after
// the broker goes away, declaring its topology again.
type confirmPublisher struct {
	url      string
	channels int
	declare  declareFunc
	route    routeFunc
	logger   *slog.Logger
	// bestEffortRouting accepts a publish that no queue takes, for
	// broadcasts that nobody may be listening to; otherwise such a publish
	// fails with ErrUnroutable.
	bestEffortRouting bool

	// slots bounds concurrent publishes to the pool size.
	slots chan struct{}
	// dialing serialises reconnects; a publish waits for it with its context.
	dialing chan struct{}

	mu     sync.Mutex
	conn   *amqp091.Connection
	idle   []*confirmChannel
	closed bool
	// stopKeeper ends keepTopology's loop; nil when none runs.
	stopKeeper chan struct{}
}

// confirmChannel is one channel in confirm mode with its return listener.
type confirmChannel struct {
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	returns chan amqp091.Return
}

func newConfirmPublisher(
	url string,
	channels int,
	declare declareFunc,
	route routeFunc,
	logger *slog.Logger,
) *confirmPublisher {
	return &confirmPublisher{
		url:      url,
		channels: channels,
		declare:  declare,
		route:    route,
		logger:   logger,
		slots:    make(chan struct{}, channels),
		dialing:  make(chan struct{}, 1),
	}
}

// connect dials the broker and declares the topology, bounded by ctx.
func (p *confirmPublisher) connect(ctx context.Context) (*amqp091.Connection, error) {
	select {
	case p.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for reconnect: %w", ctx.Err())
	}
	defer func() { <-p.dialing }()

	p.mu.Lock()
	conn, closed := p.conn, p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrPublisherClosed
	}
	if conn != nil && !conn.IsClosed() {
		// Another publish reconnected while this one waited.
		return conn, nil
	}

	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline), time.Millisecond)
	}
	conn, err := amqp091.DialConfig(p.url, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}

	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()

		return nil, fmt.Errorf("opening channel to declare topology: %w", err)
	}
	err = p.declare(ch)
	_ = ch.Close()
	if err != nil {
		_ = conn.Close()

		return nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = conn.Close()

		return nil, ErrPublisherClosed
	}
	if p.conn != nil {
		p.logger.Info("reconnected to broker")
	}
	p.conn = conn

	return conn, nil
}

// acquire takes an idle channel on the live connection, or opens one,
// reconnecting first when the connection is gone.
func (p *confirmPublisher) acquire(ctx context.Context) (*confirmChannel, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()

		return nil, ErrPublisherClosed
	}
	for len(p.idle) > 0 {
		cc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !cc.ch.IsClosed() {
			p.mu.Unlock()

			return cc, nil
		}
	}
	conn := p.conn
	p.mu.Unlock()

	if conn == nil || conn.IsClosed() {
		var err error
		if conn, err = p.connect(ctx); err != nil {
			return nil, err
		}
	}

	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("opening channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()

		return nil, fmt.Errorf("enabling publisher confirms: %w", err)
	}
	// One publish at a time per channel: a buffer of one return is enough,
	// and the reader never blocks on it.
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))

	return &confirmChannel{conn: conn, ch: ch, returns: returns}, nil
}

// connectWithRetry makes the first connection, retrying until timeout; each
// attempt may take at most 10 s.
func (p *confirmPublisher) connectWithRetry(ctx context.Context, timeout time.Duration) error {
	_, err := connectWithRetry(ctx, timeout, p.logger, func() (*amqp091.Connection, error) {
		attemptCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()

		return p.connect(attemptCtx)
	})
	if err != nil {
		return fmt.Errorf("connecting to AMQP broker %s: %w", config.RedactURL(p.url), err)
	}

	return nil
}

// keepTopology calls keep every interval while the publisher is connected,
// until it is closed, so that a piece of topology deleted under a running
// publisher is found and declared again; keep logs what it repairs.
func (p *confirmPublisher) keepTopology(interval time.Duration, keep func(*amqp091.Connection) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.stopKeeper != nil {
		return
	}
	stop := make(chan struct{})
	p.stopKeeper = stop

	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p.mu.Lock()
			conn := p.conn
			p.mu.Unlock()
			if conn == nil || conn.IsClosed() {
				continue // the next publish or readiness check reconnects and declares
			}
			if err := keep(conn); err != nil {
				p.logger.Warn("checking the topology", "error", err)
			}
		}
	}()
}

// liveConnection returns the open connection, reconnecting (and declaring
// the topology) first when there is none.
func (p *confirmPublisher) liveConnection(ctx context.Context) (*amqp091.Connection, error) {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		return conn, nil
	}

	return p.connect(ctx)
}

// release puts cc back in the pool, or closes it when its state is unknown.
func (p *confirmPublisher) release(cc *confirmChannel, healthy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if healthy && !p.closed && cc.conn == p.conn && !cc.ch.IsClosed() {
		p.idle = append(p.idle, cc)

		return
	}
	_ = cc.ch.Close()
}

// Publish sends msgs to topic's exchange one by one and returns once each is
// confirmed, or with the first failure. The deadline of a message's context
// bounds the whole publish of that message.
//
// Warning: when a deadline passes after the event reached the broker but
// before its confirm came back, the broker may still store it; the caller
// sees an error for an event that will be delivered. RabbitMQ offers no way
// to withdraw a publish.
func (p *confirmPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if err := p.publishOne(msg.Context(), topic, msg); err != nil {
			return fmt.Errorf("publishing message %s: %w", msg.UUID, err)
		}
	}

	return nil
}

func (p *confirmPublisher) publishOne(ctx context.Context, topic string, msg *message.Message) error {
	publishing, err := marshaler{}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("marshaling: %w", err)
	}

	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free channel: %w", ctx.Err())
	}
	defer func() { <-p.slots }()

	cc, err := p.acquire(ctx)
	if err != nil {
		return err
	}

	exchange, key := p.route(topic)
	ok, err := cc.publish(ctx, exchange, key, !p.bestEffortRouting, publishing)
	p.release(cc, err == nil || errors.Is(err, ErrUnroutable))
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotConfirmed
	}

	return nil
}

// publish sends one publishing and waits for its confirm; a mandatory one
// that no queue takes fails with ErrUnroutable.
func (cc *confirmChannel) publish(
	ctx context.Context,
	exchange, key string,
	mandatory bool,
	p amqp091.Publishing,
) (bool, error) {
	dc, err := cc.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, mandatory, false, p)
	if err != nil {
		return false, fmt.Errorf("sending: %w", err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return false, fmt.Errorf("waiting for confirm: %w", err)
	}

	// The broker sends basic.return before the confirm of the same publish,
	// and the channel hands both over in order, so a return is already here.
	select {
	case r, ok := <-cc.returns:
		if ok {
			return false, fmt.Errorf("%w: %s (%d)", ErrUnroutable, r.ReplyText, r.ReplyCode)
		}
	default:
	}

	return acked, nil
}

// Close closes every channel and the connection. Publishes still running
// fail with the connection.
func (p *confirmPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.stopKeeper != nil {
		close(p.stopKeeper)
	}
	for _, cc := range p.idle {
		_ = cc.ch.Close()
	}
	p.idle = nil
	if p.conn == nil || p.conn.IsClosed() {
		return nil
	}
	if err := p.conn.Close(); err != nil {
		return fmt.Errorf("closing connection to %s: %w", config.RedactURL(p.url), err)
	}

	return nil
}
