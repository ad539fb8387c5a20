package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/worker"
)

// The conformance suite proves the guarantee of every backend, each built
// from configuration alone, against the real servers of this machine (the
// in-memory backend in process): each event is handled by exactly one
// instance of each group, every group gets every event, and a failed or
// abandoned event is redelivered, not lost.

// backend is one row of the suite: how to point a configuration at the test
// server of a backend and clean up after it.
type backend struct {
	name string
	// setUp makes cfg use the backend's test server (skipping, or failing
	// under CI, when it is not running) and registers the clean-up of
	// cfg.Topic and cfg.Groups.
	setUp func(t *testing.T, cfg *config.Config)
}

var backends = []backend{
	{name: "amqp", setUp: func(t *testing.T, cfg *config.Config) {
		cfg.AMQP.URL = brokertest.RequireAMQP(t)
		queues := make([]string, 0, len(cfg.Groups))
		for _, g := range cfg.Groups {
			queues = append(queues, broker.QueueName(cfg.Topic, g))
		}
		brokertest.DeleteAMQPTopology(t, cfg.AMQP.URL, cfg.Topic, queues...)
	}},
	{name: "nats", setUp: func(t *testing.T, cfg *config.Config) {
		cfg.NATS.URL = brokertest.RequireNATS(t)
		cfg.NATS.AckWait = 3 * time.Second
		brokertest.DeleteNATSStream(t, cfg.NATS.URL, broker.NATSStreamName(cfg.Topic))
	}},
	{name: "redis", setUp: func(t *testing.T, cfg *config.Config) {
		cfg.Redis.URL = brokertest.RequireRedis(t)
		cfg.Redis.ClaimAfter = 2 * time.Second
		brokertest.DeleteRedisStream(t, cfg.Redis.URL, cfg.Topic)
	}},
	{name: "postgres", setUp: func(t *testing.T, cfg *config.Config) {
		cfg.Postgres.URL = brokertest.RequirePostgres(t)
		cfg.Postgres.AckDeadline = 5 * time.Second
		cfg.Postgres.PollInterval = 50 * time.Millisecond
		brokertest.DropPostgresTables(t, cfg.Postgres.URL, "watermill_"+cfg.Topic, "watermill_offsets_"+cfg.Topic)
	}},
	{name: "gochannel", setUp: func(*testing.T, *config.Config) {}},
}

// newConfig is the configuration of one test on b: defaults, a topic of its
// own, two groups, and no in-process retries, so that a failed handler hands
// its event back to the backend.
func newConfig(t *testing.T, b backend) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Backend = b.name
	cfg.Topic = "conf-" + uuid.NewString()[:13]
	cfg.Groups = []string{"alpha", "beta"}
	cfg.Consumer.Retry.MaxRetries = 0
	cfg.Consumer.ShutdownTimeout = 10 * time.Second
	b.setUp(t, &cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}

	return cfg
}

func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, cfg config.Config) string
	}{
		{"every event reaches every group once, shared by both instances", testCompeting},
		{"a failed event is redelivered and completed once", testRedelivery},
		{"the share of a stopped instance is completed by the other", testStoppedInstance},
		{"a group started after the events were published gets them all", testLateGroup},
	}

	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if testing.Short() && b.name != "gochannel" {
				t.Skip("needs a running broker; run without -short")
			}
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					start := time.Now()
					summary := c.run(t, newConfig(t, b))
					t.Logf("conformance backend=%s case=%q %s elapsed=%s",
						b.name, c.name, summary, time.Since(start).Round(time.Millisecond))
				})
			}
		})
	}
}

// testCompeting: 2 groups × 2 instances, 100 events published concurrently.
func testCompeting(t *testing.T, cfg config.Config) string {
	const events = 100
	rec := newRecorder()
	pub := newPublisher(t, cfg)
	for _, g := range cfg.Groups {
		for i := range 2 {
			startInstance(t, cfg, g, fmt.Sprintf("%s-%d", g, i+1), rec, work(5*time.Millisecond))
		}
	}

	ids := publishConcurrently(t, pub, cfg.Topic, events, 10)
	rec.waitAll(t, cfg.Groups, ids, 60*time.Second)
	stopAll(t)

	rec.requireExactlyOnce(t, cfg.Groups, ids)
	for _, g := range cfg.Groups {
		for i := range 2 {
			if n := rec.byInstance(fmt.Sprintf("%s-%d", g, i+1)); n == 0 {
				t.Errorf("instance %s-%d handled no event; instances of a group must share the work", g, i+1)
			}
		}
	}

	return rec.summary(cfg.Groups, ids)
}

// testRedelivery: every fourth event fails on its first attempt.
func testRedelivery(t *testing.T, cfg config.Config) string {
	const events = 20
	rec := newRecorder()
	pub := newPublisher(t, cfg)
	ids := publishConcurrently(t, pub, cfg.Topic, events, 4)
	failing := make(map[string]bool)
	for i, id := range ids {
		if i%4 == 0 {
			failing[id] = true
		}
	}
	failFirst := func(group string, msg *message.Message, attempt int) error {
		if failing[msg.UUID] && attempt == 1 {
			return errors.New("failing the first attempt on purpose")
		}

		return nil
	}
	for _, g := range cfg.Groups {
		for i := range 2 {
			startInstance(t, cfg, g, fmt.Sprintf("%s-%d", g, i+1), rec, failFirst)
		}
	}

	rec.waitAll(t, cfg.Groups, ids, 60*time.Second)
	stopAll(t)

	rec.requireExactlyOnce(t, cfg.Groups, ids)
	for _, g := range cfg.Groups {
		for id := range failing {
			if n := rec.attemptsOf(g, id); n < 2 {
				t.Errorf("group %s: failed event %s was attempted %d times, want a redelivery", g, id, n)
			}
		}
	}

	return rec.summary(cfg.Groups, ids) + fmt.Sprintf(" failed_once=%d", len(failing))
}

// testStoppedInstance: one of two instances stops mid-stream, the one that
// has handled more so far (on PostgreSQL one instance may do nearly all).
func testStoppedInstance(t *testing.T, cfg config.Config) string {
	const events = 60
	group := cfg.Groups[0]
	rec := newRecorder()
	pub := newPublisher(t, cfg)
	stop := map[string]func(){
		"a": startInstance(t, cfg, group, "a", rec, work(20*time.Millisecond)),
		"b": startInstance(t, cfg, group, "b", rec, work(20*time.Millisecond)),
	}

	ids := publishConcurrently(t, pub, cfg.Topic, events, 4)
	waitFor(t, 30*time.Second, "the group to handle 10 events", func() bool {
		return rec.byInstance("a")+rec.byInstance("b") >= 10
	})
	stopped, survivor := "a", "b"
	if rec.byInstance("b") > rec.byInstance("a") {
		stopped, survivor = "b", "a"
	}
	stop[stopped]()
	stoppedAt := rec.byInstance(stopped)
	if stoppedAt == 0 {
		t.Fatalf("instance %s handled nothing before it stopped", stopped)
	}

	rec.waitAll(t, []string{group}, ids, 60*time.Second)
	stopAll(t)

	rec.requireExactlyOnce(t, []string{group}, ids)
	if n := rec.byInstance(stopped); n != stoppedAt {
		t.Errorf("stopped instance %s handled %d events after it stopped", stopped, n-stoppedAt)
	}
	if n := rec.byInstance(survivor); n < events-stoppedAt {
		t.Errorf("survivor handled %d events, want at least the %d the stopped instance left", n, events-stoppedAt)
	}

	return rec.summary([]string{group}, ids) + fmt.Sprintf(" stopped=%s after=%d", stopped, stoppedAt)
}

// testLateGroup: events are published before any instance of any group ran.
func testLateGroup(t *testing.T, cfg config.Config) string {
	const events = 20
	rec := newRecorder()
	pub := newPublisher(t, cfg)
	ids := publishConcurrently(t, pub, cfg.Topic, events, 4)

	for _, g := range cfg.Groups {
		startInstance(t, cfg, g, g+"-1", rec, work(0))
	}
	rec.waitAll(t, cfg.Groups, ids, 60*time.Second)
	stopAll(t)

	rec.requireExactlyOnce(t, cfg.Groups, ids)

	return rec.summary(cfg.Groups, ids)
}

// TestUnreachableBackend checks that a service pointed at a server that is
// not there stops within its connect timeout, with an error naming the
// backend and the address, the password masked.
func TestUnreachableBackend(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-password"
	cases := []struct {
		backend string
		set     func(cfg *config.Config)
		want    string
	}{
		{"amqp", func(c *config.Config) {
			c.AMQP.URL = "amqp://guest:" + secret + "@127.0.0.1:1/"
			c.AMQP.ConnectTimeout = time.Second
		}, "AMQP broker amqp://guest:xxxxx@127.0.0.1:1/"},
		{"nats", func(c *config.Config) {
			c.NATS.URL = "nats://user:" + secret + "@127.0.0.1:1"
			c.NATS.ConnectTimeout = time.Second
		}, "NATS server nats://user:xxxxx@127.0.0.1:1"},
		{"redis", func(c *config.Config) {
			c.Redis.URL = "redis://:" + secret + "@127.0.0.1:1/0"
			c.Redis.ConnectTimeout = time.Second
		}, "Redis redis://:xxxxx@127.0.0.1:1/0"},
		{"postgres", func(c *config.Config) {
			c.Postgres.URL = "postgres://postgres:" + secret + "@127.0.0.1:1/test?sslmode=disable"
			c.Postgres.ConnectTimeout = time.Second
		}, "PostgreSQL postgres://postgres:xxxxx@127.0.0.1:1/test"},
	}

	for _, c := range cases {
		t.Run(c.backend+" fails fast with the masked address", func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Backend = c.backend
			c.set(&cfg)
			if err := cfg.Validate(); err != nil {
				t.Fatalf("test configuration: %v", err)
			}

			for _, role := range []string{"publisher", "subscriber"} {
				start := time.Now()
				var err error
				if role == "publisher" {
					_, err = broker.NewPublisher(context.Background(), cfg, discard())
				} else {
					_, err = broker.NewSubscriber(context.Background(), cfg, "alpha", discard())
				}
				elapsed := time.Since(start)

				if err == nil {
					t.Fatalf("%s: connected to a port where nothing listens", role)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: error %q does not name %q", role, err, c.want)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error %q shows the password", role, err)
				}
				if elapsed > 10*time.Second {
					t.Errorf("%s: gave up after %s, want about the 1s connect timeout", role, elapsed)
				}
				t.Logf("unreachable backend=%s role=%s elapsed=%s error=%q",
					c.backend, role, elapsed.Round(time.Millisecond), err)
			}
		})
	}
}

// recorder counts, per group, the events handled successfully and every
// attempt, and per instance what it handled.
type recorder struct {
	mu       sync.Mutex
	done     map[string]map[string]int // group -> event ID -> successes
	attempts map[string]map[string]int // group -> event ID -> attempts
	instance map[string]int            // instance -> successes
}

func newRecorder() *recorder {
	return &recorder{
		done:     make(map[string]map[string]int),
		attempts: make(map[string]map[string]int),
		instance: make(map[string]int),
	}
}

// attempt records an attempt and returns its number, from 1.
func (r *recorder) attempt(group, id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts[group] == nil {
		r.attempts[group] = make(map[string]int)
	}
	r.attempts[group][id]++

	return r.attempts[group][id]
}

func (r *recorder) success(group, instance, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done[group] == nil {
		r.done[group] = make(map[string]int)
	}
	r.done[group][id]++
	r.instance[instance]++
}

func (r *recorder) byInstance(instance string) int {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.instance[instance]
}

func (r *recorder) attemptsOf(group, id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.attempts[group][id]
}

func (r *recorder) handled(group string, ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if r.done[group][id] > 0 {
			n++
		}
	}

	return n
}

func (r *recorder) waitAll(t *testing.T, groups, ids []string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "every group to handle every event", func() bool {
		for _, g := range groups {
			if r.handled(g, ids) < len(ids) {
				return false
			}
		}

		return true
	})
}

func (r *recorder) requireExactlyOnce(t *testing.T, groups, ids []string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range groups {
		for _, id := range ids {
			if n := r.done[g][id]; n != 1 {
				t.Errorf("group %s handled event %s %d times, want exactly once", g, id, n)
			}
		}
		if len(r.done[g]) != len(ids) {
			t.Errorf("group %s handled %d distinct events, want %d", g, len(r.done[g]), len(ids))
		}
	}
}

// summary is one line: events, handled, duplicates and lost per group, and
// the split between instances.
func (r *recorder) summary(groups, ids []string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "events=%d", len(ids))
	for _, g := range groups {
		handled, dups := 0, 0
		for _, id := range ids {
			if n := r.done[g][id]; n > 0 {
				handled++
				dups += n - 1
			}
		}
		fmt.Fprintf(&b, " %s:handled=%d,duplicates=%d,lost=%d", g, handled, dups, len(ids)-handled)
	}
	names := make([]string, 0, len(r.instance))
	for name := range r.instance {
		names = append(names, name)
	}
	slices.Sort(names)
	b.WriteString(" split=")
	for i, name := range names {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s:%d", name, r.instance[name])
	}

	return b.String()
}

// handlerFunc decides the outcome of one attempt of msg in group.
type handlerFunc func(group string, msg *message.Message, attempt int) error

// work is a handler that always succeeds after d of simulated work.
func work(d time.Duration) handlerFunc {
	return func(string, *message.Message, int) error {
		if d > 0 {
			time.Sleep(d)
		}

		return nil
	}
}

// instances holds the stop function of every running instance of a test.
var instances sync.Map // *testing.T -> *[]func()

// startInstance runs one consumer instance of group, built from cfg as a
// service would build it, with a connection of its own. The returned
// function stops it gracefully; the test's clean-up stops it otherwise.
func startInstance(t *testing.T, cfg config.Config, group, name string, rec *recorder, h handlerFunc) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	sub, err := broker.NewSubscriber(ctx, cfg, group, discard())
	if err != nil {
		t.Fatalf("instance %s: %v", name, err)
	}
	router, err := worker.NewRouter(cfg, discard())
	if err != nil {
		t.Fatalf("instance %s: %v", name, err)
	}
	router.AddConsumerHandler(group, cfg.Topic, sub, func(msg *message.Message) error {
		attempt := rec.attempt(group, msg.UUID)
		if err := h(group, msg, attempt); err != nil {
			return err
		}
		rec.success(group, name, msg.UUID)

		return nil
	})

	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		t.Fatalf("instance %s: router stopped at start: %v", name, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("instance %s: router did not start within 30s", name)
	}

	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := router.Close(); err != nil {
				t.Errorf("instance %s: closing: %v", name, err)
			}
			if err := <-runErr; err != nil {
				t.Errorf("instance %s: %v", name, err)
			}
		})
	}
	list, _ := instances.LoadOrStore(t, &[]func(){})
	*list.(*[]func()) = append(*list.(*[]func()), stop)
	t.Cleanup(func() {
		stop()
		instances.Delete(t)
	})

	return stop
}

// stopAll stops every instance of t gracefully, so that what the recorder
// holds afterwards is final.
func stopAll(t *testing.T) {
	t.Helper()
	list, ok := instances.Load(t)
	if !ok {
		return
	}
	var wg sync.WaitGroup
	for _, stop := range *list.(*[]func()) {
		wg.Go(stop)
	}
	wg.Wait()
}

func newPublisher(t *testing.T, cfg config.Config) message.Publisher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := broker.NewPublisher(ctx, cfg, discard())
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	t.Cleanup(func() {
		if err := pub.Close(); err != nil {
			t.Logf("closing publisher: %v", err)
		}
	})

	return pub
}

// publishConcurrently publishes n events with unique IDs from workers
// goroutines and returns their IDs.
func publishConcurrently(t *testing.T, pub message.Publisher, topic string, n, workers int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				msg := message.NewMessage(ids[i], []byte(fmt.Sprintf("event %d", i)))
				if err := pub.Publish(topic, msg); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("publishing: %v", err)
	}

	return ids
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func discard() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
