package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/millrace/millrace/pkg/broker"
)

// pipeline is the services under test: one publisher and o.instances
// instances of each consumer type, on a topic of their own.
type pipeline struct {
	o     options
	topic string
	url   string
	procs []*proc
	cur   atomic.Pointer[collector]
}

// startPipeline runs the built services from binDir with the project's
// normal configuration, changing only the topic, the HTTP port and the
// broker URL, and waits until every instance is ready.
func startPipeline(o options, binDir string) (*pipeline, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p := &pipeline{o: o, topic: "bench-" + uuid.NewString()[:8], url: "http://" + addr + "/stuff"}
	env := []string{
		"MILLRACE_TOPIC=" + p.topic,
		"MILLRACE_PUBLISHER_LISTEN=" + addr,
		"MILLRACE_AMQP_URL=" + o.amqpURL,
	}
	env = append(env, o.serviceEnv...)

	pub, err := startProc("publisher", filepath.Join(binDir, "publisher"), o.repo, env, nil)
	if err != nil {
		return nil, err
	}
	p.procs = append(p.procs, pub)
	if err := pub.waitFor(o.startTimeout, "HTTP listener", func() bool { return dialable(addr) }); err != nil {
		return p, err
	}

	for typ, name := range typeNames {
		for i := range o.instances {
			onLine := func(line []byte, at time.Time) { p.handled(typ, line, at) }
			c, err := startProc(fmt.Sprintf("%s-%d", name, i+1), filepath.Join(binDir, name), o.repo, env, onLine)
			if err != nil {
				return p, err
			}
			p.procs = append(p.procs, c)
		}
	}
	for _, c := range p.procs[1:] {
		ready := func() bool { return strings.Contains(c.stderrText(), "handling events") }
		if err := c.waitFor(o.startTimeout, "subscription", ready); err != nil {
			return p, err
		}
	}

	return p, nil
}

func dialable(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()

	return true
}

// handled routes a consumer's output line to the current phase.
func (p *pipeline) handled(typ int, line []byte, at time.Time) {
	_, payload, ok := bytes.Cut(line, []byte("received: "))
	c := p.cur.Load()
	if !ok || c == nil {
		return
	}
	c.handled(typ, bytes.TrimRight(payload, "\r\n"), at)
}

// stop shuts every instance down and removes the topic's exchange and queues.
func (p *pipeline) stop() error {
	var errs []error
	for i := len(p.procs) - 1; i >= 0; i-- {
		if err := p.procs[i].stop(40 * time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.procs[i].name, err))
		}
	}
	queues := make([]string, 0, 2*numTypes)
	for _, name := range typeNames {
		queues = append(queues, broker.QueueName(p.topic, name), broker.PoisonQueue(p.topic, name))
	}
	if err := deleteTopology(p.o.amqpURL, p.topic, queues); err != nil {
		errs = append(errs, err)
	}

	return errors.Join(errs...)
}

// watched lists every process whose CPU and memory a phase reports.
func (p *pipeline) watched() []watchedProc {
	w := make([]watchedProc, 0, len(p.procs)+2)
	for _, pr := range p.procs {
		w = append(w, watchedProc{name: pr.name, pid: pr.cmd.Process.Pid, service: true})
	}

	return append(w, commonWatched(p.o)...)
}

// load is one load phase: open loop at offered events/s, or closed loop
// with concurrency requests in flight when offered is 0.
type load struct {
	name        string
	offered     int
	concurrency int
	duration    time.Duration
}

// run drives POST /stuff with vegeta for l.duration, waits until every
// accepted event has been handled by every type (or the drain gives up), and
// reports the phase.
func (p *pipeline) run(ctx context.Context, id int, l load) (phaseResult, error) {
	for _, pr := range p.procs {
		if pr.exited() {
			return phaseResult{}, fmt.Errorf("%s exited: %v\n%s", pr.name, pr.err, pr.stderrText())
		}
	}
	c := newCollector(id)
	p.cur.Store(c)
	defer p.cur.Store(nil)

	watched := p.watched()
	before := sample(watched)

	opts := []func(*vegeta.Attacker){vegeta.Timeout(10 * time.Second), vegeta.KeepAlive(true)}
	pacer := vegeta.Rate{Freq: l.offered, Per: time.Second}
	if l.offered == 0 {
		opts = append(opts, vegeta.Workers(uint64(l.concurrency)), vegeta.MaxWorkers(uint64(l.concurrency)),
			vegeta.Connections(l.concurrency))
	} else {
		// Warning: once o.maxWorkers requests are in flight vegeta waits for
		// one to finish before sending more, so a phase offered more than
		// the services take sends less than its rate (accepted + failed
		// shows how much), and the publisher's memory grows with this bound.
		opts = append(opts, vegeta.MaxWorkers(uint64(p.o.maxWorkers)))
	}
	attacker := vegeta.NewAttacker(opts...)
	header := http.Header{"Content-Type": []string{"text/plain"}}
	var seq atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		t.Method = http.MethodPost
		t.URL = p.url
		t.Header = header
		t.Body = body(id, seq.Add(1), time.Now())

		return nil
	}

	stop := context.AfterFunc(ctx, func() { attacker.Stop() })
	defer stop()
	for res := range attacker.Attack(targeter, pacer, l.duration, l.name) {
		p.record(c, res)
	}
	drain(ctx, c, p.o.drain, p.o.idle)

	return newPhaseResult(l, c.result(), watched, before, sample(watched)), ctx.Err()
}

func (p *pipeline) record(c *collector, res *vegeta.Result) {
	if res.Code != http.StatusOK {
		reason := res.Error
		if res.Code != 0 {
			reason = fmt.Sprintf("HTTP %d", res.Code)
		}
		c.fail(reason)

		return
	}
	_, payload, _ := bytes.Cut(res.Body, []byte("received: "))
	_, seq, sent, ok := parseBody(payload)
	if !ok {
		c.fail("unexpected response body")

		return
	}
	c.confirmed(seq, sent, res.Latency)
}

// drain waits until every confirmed event has been handled by every type,
// nothing has been handled for idle, or timeout passes.
func drain(ctx context.Context, c *collector, timeout, idle time.Duration) {
	deadline := time.Now().Add(timeout)
	lastHandled, lastChange := -1, time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		handled, missing := c.progress()
		if missing == 0 {
			return
		}
		if handled != lastHandled {
			lastHandled, lastChange = handled, time.Now()
		} else if time.Since(lastChange) > idle {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteTopology removes a bench topic's exchange, its audit exchange (left
// when the services ran with the audit trail on) and queues. Deleting what
// does not exist succeeds.
func deleteTopology(amqpURL, exchange string, queues []string) error {
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		return fmt.Errorf("cleaning up %s: %w", exchange, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("cleaning up %s: %w", exchange, err)
	}
	defer ch.Close()

	var errs []error
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			errs = append(errs, fmt.Errorf("deleting queue %s: %w", q, err))
		}
	}
	for _, x := range []string{exchange, exchange + ".audit"} {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			errs = append(errs, fmt.Errorf("deleting exchange %s: %w", x, err))
		}
	}

	return errors.Join(errs...)
}

// commonWatched is the processes every phase reports besides the services:
// the bench itself (load generator, and the baselines' clients) and the broker.
func commonWatched(o options) []watchedProc {
	w := []watchedProc{{name: "bench (load, clients)", pid: os.Getpid()}}
	if o.brokerPID > 0 {
		w = append(w, watchedProc{name: "rabbitmq", pid: o.brokerPID})
	}

	return w
}
