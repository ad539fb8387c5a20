package broker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

// The gochannel backend keeps events in memory, inside one process, with the
// same consumer groups as the brokers: every group of a topic gets its own
// queue of every event, and the subscribers of one group take turns on that
// queue. Watermill's GoChannel would give every subscriber a copy instead.
//
// Warning: one process only, and nothing survives it. Every publisher and
// subscriber of a process shares one in-memory broker; another process has
// another one, so separate service processes never see each other's events.

// ErrInProcessOnly is returned when a backend that cannot cross processes is
// chosen for a service that runs as its own process.
var ErrInProcessOnly = errors.New("backend gochannel keeps events inside one process, " +
	"and each millrace service is a process of its own: the publisher's events would never reach " +
	"the consumers. Use nats, redis, postgres or amqp (the README's quick start runs a NATS server " +
	"with `go tool task run-all-nats`); gochannel is for tests and single-process programs")

// memory is the process's in-memory broker.
var memory = &memBroker{topics: make(map[string]map[string]*memQueue)}

type memBroker struct {
	mu     sync.Mutex
	topics map[string]map[string]*memQueue // topic -> group -> queue
}

// queue returns group's queue on topic, creating it empty.
func (b *memBroker) queue(topic, group string) *memQueue {
	b.mu.Lock()
	defer b.mu.Unlock()

	groups := b.topics[topic]
	if groups == nil {
		groups = make(map[string]*memQueue)
		b.topics[topic] = groups
	}
	q := groups[group]
	if q == nil {
		q = &memQueue{ready: make(chan struct{})}
		groups[group] = q
	}

	return q
}

// publish appends a copy of every message to the queue of every group of topic.
func (b *memBroker) publish(topic string, msgs []*message.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()

	for _, q := range b.topics[topic] {
		for _, m := range msgs {
			c := m.Copy()
			c.Metadata.Set(events.MetaDeliveryAttempt, "0")
			q.push(c, false)
		}
	}
}

// memQueue is one group's unbounded FIFO of events.
type memQueue struct {
	mu    sync.Mutex
	items []*message.Message
	ready chan struct{} // closed and replaced when an item is pushed
}

func (q *memQueue) push(m *message.Message, front bool) {
	q.mu.Lock()
	defer q.mu.Unlock()

	if front {
		q.items = append([]*message.Message{m}, q.items...)
	} else {
		q.items = append(q.items, m)
	}
	close(q.ready)
	q.ready = make(chan struct{})
}

// pop takes the first event, waiting for one until done is closed.
func (q *memQueue) pop(done <-chan struct{}) (*message.Message, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			m := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()

			return m, true
		}
		ready := q.ready
		q.mu.Unlock()

		select {
		case <-ready:
		case <-done:
			return nil, false
		}
	}
}

type memPublisher struct{}

func (memPublisher) Publish(topic string, msgs ...*message.Message) error {
	memory.publish(topic, msgs)

	return nil
}

func (memPublisher) Close() error { return nil }

func newGoChannelPublisher(_ context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	for _, group := range cfg.Groups {
		memory.queue(cfg.Topic, group)
	}
	logger.Info("using the in-memory broker of this process", "backend", "gochannel",
		"topic", cfg.Topic, "groups", cfg.Groups)

	return memPublisher{}, nil
}

// memSubscriber is one member of a group: each Subscribe takes events from
// the group's queue one at a time, and puts back any it did not see acked.
type memSubscriber struct {
	group     string
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newGoChannelSubscriber(_ context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Subscriber, error) {
	memory.queue(cfg.Topic, group)
	logger.Info("using the in-memory broker of this process", "backend", "gochannel",
		"topic", cfg.Topic, "consumer_group", group)

	return &memSubscriber{group: group, closing: make(chan struct{})}, nil
}

func (s *memSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errors.New("subscriber closed")
	default:
	}

	q := memory.queue(topic, s.group)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closing:
		}
		close(done)
	}()

	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for s.deliver(ctx, q, out, done) {
		}
	}()

	return out, nil
}

// deliver hands one event to out and waits for its ack; a nack, or a stop
// before the ack, puts the event back for any member of the group.
func (s *memSubscriber) deliver(ctx context.Context, q *memQueue, out chan<- *message.Message, done <-chan struct{}) bool {
	stored, ok := q.pop(done)
	if !ok {
		return false
	}

	attempt, _ := strconv.Atoi(stored.Metadata.Get(events.MetaDeliveryAttempt))
	stored.Metadata.Set(events.MetaDeliveryAttempt, strconv.Itoa(attempt+1))
	stored.Metadata.Set(events.MetaRedelivered, strconv.FormatBool(attempt > 0))
	msg := stored.Copy()
	msg.SetContext(ctx)

	select {
	case out <- msg:
	case <-done:
		q.push(stored, true)

		return false
	}

	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		q.push(stored, false)

		return true
	case <-done:
		q.push(stored, true)

		return false
	}
}

func (s *memSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()

	return nil
}
