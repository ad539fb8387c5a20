package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pkg/brokertest"
)

func TestBodyRoundTrips(t *testing.T) {
	t.Parallel()
	sent := time.Unix(1_700_000_000, 123456789)

	tests := []struct {
		name    string
		payload []byte
		wantOK  bool
		wantSeq uint64
	}{
		{name: "a body the bench wrote reads back", payload: body(3, 42, sent), wantOK: true, wantSeq: 42},
		{name: "a user's body is not a bench event", payload: []byte("Hello World")},
		{name: "a body with a field missing is rejected", payload: []byte("bench 3 42")},
		{name: "a body with a non-numeric time is rejected", payload: []byte("bench 3 42 soon")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			phase, seq, at, ok := parseBody(tt.payload)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok && (phase != 3 || seq != tt.wantSeq || at != sent.UnixNano()) {
				t.Errorf("got phase %d seq %d sent %d, want 3 %d %d", phase, seq, at, tt.wantSeq, sent.UnixNano())
			}
		})
	}
}

func TestCollectorCountsLostAndDuplicatedEventsExactly(t *testing.T) {
	t.Parallel()
	start := time.Now()
	ms := func(n int) time.Time { return start.Add(time.Duration(n) * time.Millisecond) }

	c := newCollector(1)
	for seq := uint64(1); seq <= 4; seq++ {
		c.confirmed(seq, start.UnixNano(), time.Millisecond)
	}
	c.fail("HTTP 503")
	// Event 1 reaches both types; 2 reaches the consumer twice; 3 never
	// reaches the extra special consumer; 4 reaches nobody.
	c.handled(typeConsumer, body(1, 1, start), ms(10))
	c.handled(typeExtraSpecial, body(1, 1, start), ms(20))
	c.handled(typeConsumer, body(1, 2, start), ms(5))
	c.handled(typeConsumer, body(1, 2, start), ms(30))
	c.handled(typeExtraSpecial, body(1, 2, start), ms(8))
	c.handled(typeConsumer, body(1, 3, start), ms(7))
	c.handled(typeConsumer, body(2, 1, start), ms(7))
	c.handled(typeConsumer, []byte("Hello World"), ms(7))

	f := c.result()
	checks := []struct {
		name      string
		got, want int
	}{
		{name: "confirmed events", got: f.confirmed, want: 4},
		{name: "failed requests", got: f.failed, want: 1},
		{name: "events completed by both types", got: f.completed, want: 2},
		{name: "lost by the consumer", got: f.lost[typeConsumer], want: 1},
		{name: "lost by the extra special consumer", got: f.lost[typeExtraSpecial], want: 2},
		{name: "duplicated at the consumer", got: f.dup[typeConsumer], want: 1},
		{name: "duplicated at the extra special consumer", got: f.dup[typeExtraSpecial], want: 0},
		{name: "lines of another phase or run", got: f.strays, want: 2},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %d, want %d", ch.name, ch.got, ch.want)
		}
	}
	if f.e2e[typeConsumer].max != 10*time.Millisecond {
		t.Errorf("slowest consumer latency = %s, want the first delivery's 10ms", f.e2e[typeConsumer].max)
	}
	if _, missing := c.progress(); missing != 3 {
		t.Errorf("missing deliveries = %d, want 3", missing)
	}
}

func TestQuantilesPickTheNearestRank(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1000; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	q := quantilesOf(d)
	if q.p50 != 500*time.Millisecond || q.p99 != 990*time.Millisecond || q.p999 != 999*time.Millisecond ||
		q.max != time.Second || q.n != 1000 {
		t.Errorf("quantiles = %+v, want p50 500ms, p99 990ms, p99.9 999ms, max 1s of 1000", q)
	}
	if empty := quantilesOf(nil); empty.n != 0 {
		t.Errorf("quantiles of nothing = %+v, want n 0", empty)
	}
}

func TestBadFlagsAreAllReportedAtOnce(t *testing.T) {
	t.Parallel()
	_, err := parseFlags([]string{"-repo", "../..", "-rates", "500,fast", "-instances", "0", "-duration", "0s"}, io.Discard)
	if err == nil {
		t.Fatal("bad flags were accepted")
	}
	for _, want := range []string{`-rates: "fast"`, "-instances: must be at least 1", "-duration: must be a positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestBenchSmoke runs the whole tool for about a second per phase, so that
// it cannot rot: CI runs it (it is not -short), the full benchmark it does not.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench smoke runs the services against RabbitMQ")
	}
	amqpURL := brokertest.RequireAMQP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	out := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"-repo", "../..", "-amqp-url", amqpURL, "-duration", "1s", "-rates", "100",
		"-ramp", "0", "-concurrency", "8", "-window", "32", "-drain", "30s", "-out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench failed: %v\n%s", err, stderr.String())
	}

	text := stdout.String()
	for _, want := range []string{
		"| open loop 100 ev/s | 100 |",
		"| closed loop, 8 in flight | max |",
		"| baseline (a), 8 publishers each confirmed | max |",
		"| baseline (b), pipelined confirms window 32 | max |",
		"services / baseline (a) same semantics",
		"services / baseline (b) physical limit",
		"0 lost, 0 duplicated: 0 lost, 0 duplicated, met",
		"| publisher |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, row := range []string{"open loop 100 ev/s", "closed loop, 8 in flight", "baseline (a)", "baseline (b)"} {
		m := regexp.MustCompile(`\| ` + regexp.QuoteMeta(row) + `[^|]* \| \w+ \| (\d+) \|`).FindStringSubmatch(text)
		if m == nil || m[1] == "0" {
			t.Errorf("row %q shows no completed events:\n%s", row, text)
		}
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("results file: %v", err)
	}
	if !bytes.Contains(written, []byte("# Benchmark results")) || !bytes.Contains(written, []byte(text)) {
		t.Errorf("results file does not hold the printed table:\n%s", written)
	}
}
