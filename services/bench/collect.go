package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// The consumer types, in the order every per-type figure is kept.
const (
	typeConsumer = iota
	typeExtraSpecial
	numTypes
)

var typeNames = [numTypes]string{"consumer", "extraspecialconsumer"}

// body is the payload of one bench event: unique by phase and sequence
// number, and carrying its send time, so that the line a consumer prints for
// it says which event it was and how long it took.
func body(phase int, seq uint64, sent time.Time) []byte {
	return fmt.Appendf(nil, "bench %d %d %d", phase, seq, sent.UnixNano())
}

// parseBody reads back what body wrote; ok is false for anything else.
func parseBody(b []byte) (phase int, seq uint64, sent int64, ok bool) {
	fields := bytes.Fields(b)
	if len(fields) != 4 || string(fields[0]) != "bench" {
		return 0, 0, 0, false
	}
	p, err1 := strconv.Atoi(string(fields[1]))
	s, err2 := strconv.ParseUint(string(fields[2]), 10, 64)
	n, err3 := strconv.ParseInt(string(fields[3]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}

	return p, s, n, true
}

// record is what is known of one event: whether the publisher (or the
// baseline's broker) confirmed it, and when each consumer type handled it.
type record struct {
	sent      int64
	confirmed bool
	seen      [numTypes]int
	done      [numTypes]int64
}

// collector gathers, for one phase, the confirms and the handled events of
// every consumer type; it is the exact oracle for lost and duplicated events.
type collector struct {
	mu       sync.Mutex
	phase    int
	start    time.Time
	events   map[uint64]*record
	sendLat  []time.Duration
	failed   int
	failures map[string]int
	strays   int
	perType  [numTypes]int
}

func newCollector(phase int) *collector {
	return &collector{
		phase:    phase,
		start:    time.Now(),
		events:   make(map[uint64]*record),
		failures: make(map[string]int),
	}
}

func (c *collector) get(seq uint64) *record {
	r, ok := c.events[seq]
	if !ok {
		r = &record{}
		c.events[seq] = r
	}

	return r
}

// confirmed notes that the event seq was accepted (HTTP 200, or a broker
// confirm in a baseline) after latency.
func (c *collector) confirmed(seq uint64, sent int64, latency time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.get(seq)
	r.confirmed = true
	r.sent = sent
	c.sendLat = append(c.sendLat, latency)
}

// fail notes a request or publish that was not accepted, by reason.
func (c *collector) fail(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed++
	c.failures[reason]++
}

// handled notes that a consumer of type typ finished the event whose body is
// payload at time at. Bodies of other phases or runs count as strays.
func (c *collector) handled(typ int, payload []byte, at time.Time) {
	phase, seq, sent, ok := parseBody(payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok || phase != c.phase {
		c.strays++

		return
	}
	r := c.get(seq)
	r.sent = sent
	r.seen[typ]++
	if r.seen[typ] == 1 {
		r.done[typ] = at.UnixNano()
	}
	c.perType[typ]++
}

// progress returns how many events every type has handled so far (duplicates
// included) and how many confirmed events some type has not handled yet.
func (c *collector) progress() (handled int, missing int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.perType {
		handled += n
	}
	for _, r := range c.events {
		for typ := range numTypes {
			if r.confirmed && r.seen[typ] == 0 {
				missing++
			}
		}
	}

	return handled, missing
}

// flow is what a collector measured, once the phase has drained.
type flow struct {
	confirmed, failed int
	failures          map[string]int
	sendLat           quantiles
	e2e               [numTypes]quantiles
	// completed counts the events every type handled; rate is completed per
	// second from the phase start to the last completion.
	completed int
	rate      float64
	lost, dup [numTypes]int
	// unconfirmedSeen counts events that were handled although their request
	// failed (a publish that timed out on the client but reached the broker).
	unconfirmedSeen int
	strays          int
}

func (c *collector) result() flow {
	c.mu.Lock()
	defer c.mu.Unlock()

	f := flow{failed: c.failed, failures: c.failures, strays: c.strays, sendLat: quantilesOf(c.sendLat)}
	var e2e [numTypes][]time.Duration
	var last int64
	for _, r := range c.events {
		if r.confirmed {
			f.confirmed++
		}
		all := true
		for typ := range numTypes {
			switch {
			case r.seen[typ] == 0:
				all = false
				if r.confirmed {
					f.lost[typ]++
				}
			default:
				f.dup[typ] += r.seen[typ] - 1
				e2e[typ] = append(e2e[typ], time.Duration(r.done[typ]-r.sent))
				last = max(last, r.done[typ])
			}
		}
		if all {
			f.completed++
		}
		if !r.confirmed && (r.seen[0] > 0 || r.seen[1] > 0) {
			f.unconfirmedSeen++
		}
	}
	for typ := range numTypes {
		f.e2e[typ] = quantilesOf(e2e[typ])
	}
	if elapsed := time.Duration(last - c.start.UnixNano()); f.completed > 0 && elapsed > 0 {
		f.rate = float64(f.completed) / elapsed.Seconds()
	}

	return f
}

// quantiles summarises a latency distribution; n is 0 when it is empty.
type quantiles struct {
	n                   int
	p50, p99, p999, max time.Duration
}

func quantilesOf(d []time.Duration) quantiles {
	if len(d) == 0 {
		return quantiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1

		return s[min(max(i, 0), len(s)-1)]
	}

	return quantiles{n: len(s), p50: at(0.50), p99: at(0.99), p999: at(0.999), max: s[len(s)-1]}
}
