package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// A baseline does what the services do, written directly on amqp091-go with
// the same durability: a durable fanout exchange, one durable queue per
// consumer type, persistent messages, publisher confirms, manual acks and as
// many consumers (each on its own connection, as an instance is) per type.
type baseline struct {
	// pipelined publishes on one channel with up to window unconfirmed
	// messages; otherwise concurrency publishers each wait for the confirm
	// of their message before sending the next, as an HTTP handler must.
	pipelined bool
	// prefetch is each consumer's QoS.
	prefetch int
}

// runBaseline measures one baseline for l.duration on a topology of its own,
// then removes it.
func runBaseline(ctx context.Context, o options, id int, l load, b baseline) (_ phaseResult, err error) {
	exchange := "bench-baseline-" + uuid.NewString()[:8]
	queues := make([]string, 0, numTypes)
	for _, name := range typeNames {
		queues = append(queues, exchange+"."+name)
	}

	conn, err := amqp091.Dial(o.amqpURL)
	if err != nil {
		return phaseResult{}, fmt.Errorf("connecting baseline publisher: %w", err)
	}
	defer conn.Close()
	defer func() { err = errors.Join(err, deleteTopology(o.amqpURL, exchange, queues)) }()
	if err := declareBaseline(conn, exchange, queues); err != nil {
		return phaseResult{}, err
	}

	c := newCollector(id)
	stopConsumers, err := startBaselineConsumers(o, queues, b.prefetch, c)
	defer stopConsumers()
	if err != nil {
		return phaseResult{}, err
	}

	watched := commonWatched(o)
	before := sample(watched)
	pubCtx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()
	if b.pipelined {
		err = publishPipelined(pubCtx, conn, exchange, id, o.window, c)
	} else {
		err = publishEachConfirmed(pubCtx, conn, exchange, id, l.concurrency, c)
	}
	if err != nil {
		return phaseResult{}, err
	}
	drain(ctx, c, o.drain, o.idle)

	return newPhaseResult(l, c.result(), watched, before, sample(watched)), ctx.Err()
}

func declareBaseline(conn *amqp091.Connection, exchange string, queues []string) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("opening baseline channel: %w", err)
	}
	defer ch.Close()
	if err := ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declaring exchange %s: %w", exchange, err)
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declaring queue %s: %w", q, err)
		}
		if err := ch.QueueBind(q, "", exchange, false, nil); err != nil {
			return fmt.Errorf("binding queue %s: %w", q, err)
		}
	}

	return nil
}

// startBaselineConsumers runs o.instances consumers per queue, each on its
// own connection, acknowledging every message after recording it. The
// returned stop closes them all.
func startBaselineConsumers(o options, queues []string, prefetch int, c *collector) (func(), error) {
	var (
		conns []*amqp091.Connection
		wg    sync.WaitGroup
	)
	stop := func() {
		for _, conn := range conns {
			_ = conn.Close()
		}
		wg.Wait()
	}
	for typ, q := range queues {
		for range o.instances {
			conn, err := amqp091.Dial(o.amqpURL)
			if err != nil {
				return stop, fmt.Errorf("connecting baseline consumer: %w", err)
			}
			conns = append(conns, conn)
			ch, err := conn.Channel()
			if err != nil {
				return stop, fmt.Errorf("opening baseline consumer channel: %w", err)
			}
			if err := ch.Qos(prefetch, 0, false); err != nil {
				return stop, fmt.Errorf("setting baseline prefetch: %w", err)
			}
			deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
			if err != nil {
				return stop, fmt.Errorf("consuming %s: %w", q, err)
			}
			wg.Go(func() {
				for d := range deliveries {
					c.handled(typ, d.Body, time.Now())
					if err := d.Ack(false); err != nil {
						return
					}
				}
			})
		}
	}

	return stop, nil
}

func persistent(id int, seq uint64, sent time.Time) amqp091.Publishing {
	return amqp091.Publishing{
		DeliveryMode: amqp091.Persistent,
		ContentType:  "text/plain",
		MessageId:    uuid.NewString(),
		Timestamp:    sent,
		Body:         body(id, seq, sent),
	}
}

// publishEachConfirmed is baseline (a): concurrency publishers, each on its
// own confirm channel, each waiting for its confirm before the next publish.
func publishEachConfirmed(ctx context.Context, conn *amqp091.Connection, exchange string, id, concurrency int, c *collector) error {
	var (
		seq atomic.Uint64
		wg  sync.WaitGroup
	)
	errs := make(chan error, concurrency)
	for range concurrency {
		ch, err := confirmChannel(conn)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer ch.Close()
			for ctx.Err() == nil {
				s, sent := seq.Add(1), time.Now()
				dc, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, "", false, false,
					persistent(id, s, sent))
				if err != nil {
					errs <- fmt.Errorf("publishing: %w", err)

					return
				}
				if dc.Wait() {
					c.confirmed(s, sent.UnixNano(), time.Since(sent))
				} else {
					c.fail("nack")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}

	return errors.Join(all...)
}

// publishPipelined is baseline (b): one confirm channel with up to window
// messages published and not yet confirmed.
func publishPipelined(ctx context.Context, conn *amqp091.Connection, exchange string, id, window int, c *collector) error {
	ch, err := confirmChannel(conn)
	if err != nil {
		return err
	}
	defer ch.Close()

	type pending struct {
		seq  uint64
		sent time.Time
		dc   *amqp091.DeferredConfirmation
	}
	inFlight := make(chan pending, window)
	confirmed := make(chan struct{})
	go func() {
		defer close(confirmed)
		for p := range inFlight {
			if p.dc.Wait() {
				c.confirmed(p.seq, p.sent.UnixNano(), time.Since(p.sent))
			} else {
				c.fail("nack")
			}
		}
	}()

	var seq uint64
	for ctx.Err() == nil {
		seq++
		sent := time.Now()
		dc, perr := ch.PublishWithDeferredConfirmWithContext(context.Background(), exchange, "", false, false,
			persistent(id, seq, sent))
		if perr != nil {
			err = fmt.Errorf("publishing: %w", perr)

			break
		}
		inFlight <- pending{seq: seq, sent: sent, dc: dc}
	}
	close(inFlight)
	<-confirmed

	return err
}

func confirmChannel(conn *amqp091.Connection) (*amqp091.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("opening baseline channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()

		return nil, fmt.Errorf("putting channel in confirm mode: %w", err)
	}

	return ch, nil
}
