// Package faults_test injects faults into running millrace services against
// a private RabbitMQ node: broker restarts, kill -9 and SIGTERM of consumer
// instances mid-handle, failing handlers, events posted before any consumer
// ran. Every scenario counts each event's completions per consumer type and
// logs one summary line: sent, acknowledged, handled per type, duplicates,
// lost. They must all end with 0 duplicates and 0 lost.
package faults_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

// The two consumer types every scenario runs.
const (
	typeA = "typea"
	typeB = "typeb"
)

const publishTimeout = 2 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles the publisher and the fault worker once per test run.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "millrace-faults-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(os.PathSeparator),
			"github.com/millrace/millrace/services/publisher",
			"github.com/millrace/millrace/services/systemtest/faultworker")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}

	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// ledger records what every instance started and completed, per type.
type ledger struct {
	mu      sync.Mutex
	started map[string][]string // "type body" -> instance names
	done    map[string][]string
	changed chan struct{}
}

func newLedger() *ledger {
	return &ledger{started: map[string][]string{}, done: map[string][]string{}, changed: make(chan struct{})}
}

func (l *ledger) record(group, instance, line string) {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return
	}
	kind, body := fields[0], fields[1]
	if len(fields) > 2 {
		instance += " (" + strings.Join(fields[2:], " ") + ")"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch kind {
	case "start":
		l.started[group+" "+body] = append(l.started[group+" "+body], instance)
	case "done":
		l.done[group+" "+body] = append(l.done[group+" "+body], instance)
	default:
		return
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *ledger) doneBy(group, body string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()

	return slices.Clone(l.done[group+" "+body])
}

func (l *ledger) startedBy(group, body string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()

	return slices.Clone(l.started[group+" "+body])
}

// completedMoreThanOnce returns the bodies group completed more than once,
// with the instances that did.
func (l *ledger) completedMoreThanOnce(group string) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	for key, by := range l.done {
		if body, ok := strings.CutPrefix(key, group+" "); ok && len(by) > 1 {
			out[body] = slices.Clone(by)
		}
	}

	return out
}

// handled counts the bodies group completed at least once.
func (l *ledger) handled(group string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for key := range l.done {
		if strings.HasPrefix(key, group+" ") {
			n++
		}
	}

	return n
}

// waitUntil polls cond on every ledger change and every 50ms until it holds
// or timeout passes.
func (l *ledger) waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// cluster is one scenario's services on the private node.
type cluster struct {
	t      *testing.T
	bin    string
	node   *brokertest.RabbitNode
	topic  string
	listen string
	ledger *ledger
	logDir string
	client *http.Client
}

func newCluster(t *testing.T, node *brokertest.RabbitNode, scenario string) *cluster {
	t.Helper()
	c := &cluster{
		t:      t,
		bin:    build(t),
		node:   node,
		topic:  "faults-" + scenario + "-" + uuid.NewString()[:8],
		listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		ledger: newLedger(),
		logDir: logDir(t),
		client: &http.Client{Timeout: publishTimeout + 3*time.Second},
	}
	brokertest.DeleteAMQPTopology(t, node.URL(), c.topic,
		broker.QueueName(c.topic, typeA), broker.QueueName(c.topic, typeB),
		broker.PoisonQueue(c.topic, typeA), broker.PoisonQueue(c.topic, typeB))

	return c
}

// logDir holds the instances' logs; it is kept when the test fails.
func logDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "millrace-faults-logs-")
	if err != nil {
		t.Fatalf("creating log directory: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("instance logs kept in %s", dir)

			return
		}
		_ = os.RemoveAll(dir)
	})

	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()

	return ln.Addr().(*net.TCPAddr).Port
}

func (c *cluster) env(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"MILLRACE_AMQP_URL=" + c.node.URL(),
		"MILLRACE_AMQP_CONNECT_TIMEOUT=90s",
		"MILLRACE_TOPIC=" + c.topic,
		"MILLRACE_GROUPS=" + typeA + "," + typeB,
		"MILLRACE_PUBLISHER_LISTEN=" + c.listen,
		"MILLRACE_PUBLISHER_PUBLISH_TIMEOUT=" + publishTimeout.String(),
		"MILLRACE_CONSUMER_SHUTDOWN_TIMEOUT=10s",
		"MILLRACE_CONSUMER_RETRY_MAX_RETRIES=2",
		"MILLRACE_CONSUMER_RETRY_INITIAL_INTERVAL=10ms",
		"MILLRACE_CONSUMER_RETRY_MAX_INTERVAL=50ms",
		"MILLRACE_LOG_LEVEL=debug",
	}

	return append(env, extra...)
}

// instance is one running service process.
type instance struct {
	name    string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// start runs a service binary; its stdout lines go to the ledger under group.
func (c *cluster) start(name, binary, group string, extraEnv ...string) *instance {
	c.t.Helper()
	logPath := filepath.Join(c.logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		c.t.Fatalf("creating log: %v", err)
	}
	cmd := exec.Command(filepath.Join(c.bin, binary))
	cmd.Env = c.env(extraEnv...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatalf("stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting %s: %v", name, err)
	}
	inst := &instance{name: name, cmd: cmd, exited: make(chan struct{}), logPath: logPath}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.ledger.record(group, name, sc.Text())
		}
		_ = cmd.Wait()
		_ = logFile.Close()
		close(inst.exited)
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-inst.exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-inst.exited
		}
		if c.t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				c.t.Logf("--- %s log (last 3000 bytes):\n%s", name, tail(log, 3000))
			}
		}
	})

	return inst
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}

	return b
}

// startPublisher starts the publisher and waits until it answers HTTP.
func (c *cluster) startPublisher() *instance {
	c.t.Helper()
	inst := c.start("publisher", "publisher", "")
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := c.client.Get("http://" + c.listen + "/stuff")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed {
				return inst
			}
		}
		select {
		case <-inst.exited:
			c.t.Fatalf("publisher exited while starting")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("publisher not answering after 90s: %v", err)
		}
	}
}

// startWorker starts one instance of group and waits until it consumes.
func (c *cluster) startWorker(name, group string, extraEnv ...string) *instance {
	c.t.Helper()
	env := append([]string{"FAULTWORKER_GROUP=" + group}, extraEnv...)

	return c.start(name, "faultworker", group, env...)
}

// waitConsumers waits until queue has n consumers.
func (c *cluster) waitConsumers(group string, n int) {
	c.t.Helper()
	c.ledger.waitUntil(c.t, 60*time.Second, fmt.Sprintf("%d consumers on %s", n, group), func() bool {
		ready, consumers, err := c.queueState(broker.QueueName(c.topic, group))

		return err == nil && consumers == n && ready >= 0
	})
}

func (c *cluster) queueState(queue string) (ready, consumers int, err error) {
	conn, err := amqp091.Dial(c.node.URL())
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, 0, err
	}

	return q.Messages, q.Consumers, nil
}

// post sends one event and returns the status (0 when the request failed)
// and how long it took.
func (c *cluster) post(body string) (int, time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout+3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.listen+"/stuff", strings.NewReader(body))
	if err != nil {
		return 0, time.Since(start)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, time.Since(start)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && string(text) != "received: "+body {
		c.t.Errorf("answer %q for body %q", text, body)
	}

	return resp.StatusCode, time.Since(start)
}

// mustPost posts bodies one after the other and fails unless each gets 200.
func (c *cluster) mustPost(bodies ...string) {
	c.t.Helper()
	for _, b := range bodies {
		if status, _ := c.post(b); status != http.StatusOK {
			c.t.Fatalf("POST %q: status %d, want 200", b, status)
		}
	}
}

// settle waits until every acknowledged body was completed by every group
// (bodies listed in skip excepted for their group), then checks and logs
// the summary line of the scenario.
func (c *cluster) settle(scenario string, sent int, acked []string, skip map[string][]string) {
	c.t.Helper()
	expected := func(group string) []string {
		var want []string
		for _, b := range acked {
			if !slices.Contains(skip[group], b) {
				want = append(want, b)
			}
		}

		return want
	}
	c.ledger.waitUntil(c.t, 90*time.Second, "every acknowledged event to be handled by every type", func() bool {
		for _, g := range []string{typeA, typeB} {
			for _, b := range expected(g) {
				if len(c.ledger.doneBy(g, b)) == 0 {
					return false
				}
			}
		}

		return true
	})

	// Whatever was still to be redelivered shows now: wait until both
	// queues are empty with nothing in flight before counting duplicates.
	c.ledger.waitUntil(c.t, 60*time.Second, "both queues to be empty", func() bool {
		for _, g := range []string{typeA, typeB} {
			ready, _, err := c.queueState(broker.QueueName(c.topic, g))
			if err != nil || ready != 0 {
				return false
			}
		}

		return true
	})

	duplicates, lost := 0, 0
	handled := map[string]int{}
	for _, g := range []string{typeA, typeB} {
		handled[g] = c.ledger.handled(g)
		for _, b := range expected(g) {
			if len(c.ledger.doneBy(g, b)) == 0 {
				lost++
			}
		}
		// Every completion counts here, of events that got 200 or not.
		dups := 0
		for b, by := range c.ledger.completedMoreThanOnce(g) {
			dups += len(by) - 1
			c.t.Errorf("%s completed %q %d times: %v", g, b, len(by), by)
		}
		duplicates += dups
	}
	// An event whose confirm was cut off by the outage got 503 but may have
	// been stored: it is handled, and it is not a duplicate (the client was
	// told to try again, and a retry is a new event with a new ID).
	storedDespite503 := max(handled[typeA], handled[typeB]) - len(acked)
	line := fmt.Sprintf("SUMMARY scenario=%s sent=%d acknowledged=%d handled[%s]=%d handled[%s]=%d "+
		"duplicates=%d lost=%d stored_despite_503=%d",
		scenario, sent, len(acked), typeA, handled[typeA], typeB, handled[typeB], duplicates, lost, storedDespite503)
	c.t.Log(line)
	fmt.Println(line)
	if lost != 0 {
		c.t.Errorf("%s: want 0 lost", scenario)
	}
}

func bodies(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}

	return out
}

// TestFaults runs every scenario, one after the other, on one private node.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection runs real services against a private broker")
	}
	node := brokertest.StartRabbitNode(t)

	t.Run("a 200 means stored, and events posted before any consumer ran are all handled once per type",
		func(t *testing.T) { testBeforeConsumers(t, node) })
	t.Run("failing events are retried then parked per type with their metadata, and can be replayed",
		func(t *testing.T) { testPoison(t, node) })
	t.Run("kill -9 of an instance mid-handle redelivers its event to the other instance",
		func(t *testing.T) { testKill(t, node) })
	t.Run("SIGTERM mid-handle finishes and acks the event in flight, and it is not redelivered",
		func(t *testing.T) { testTerm(t, node) })
	t.Run("SIGTERM with a handler slower than the shutdown timeout exits on time and the event goes to another instance",
		func(t *testing.T) { testTermTimeout(t, node) })
	t.Run("a broker restart under load loses nothing that got 200 and answers 503 while it is down",
		func(t *testing.T) { testBrokerRestart(t, node, false) })
	t.Run("a broker restart with competing instances sharing their completed IDs loses nothing and completes each event once",
		func(t *testing.T) { testBrokerRestart(t, node, true) })
}

func testBeforeConsumers(t *testing.T, node *brokertest.RabbitNode) {
	c := newCluster(t, node, "before-consumers")
	c.startPublisher()
	sent := bodies("early", 5)
	c.mustPost(sent...)

	// Each 200 came after the broker confirmed: both queues hold all five
	// before any consumer exists.
	for _, g := range []string{typeA, typeB} {
		ready, consumers, err := c.queueState(broker.QueueName(c.topic, g))
		if err != nil || ready != len(sent) || consumers != 0 {
			t.Fatalf("queue of %s: %d ready, %d consumers, %v; want %d ready and no consumer",
				g, ready, consumers, err, len(sent))
		}
	}

	c.startWorker("a1", typeA)
	c.startWorker("b1", typeB)
	c.settle("before-consumers", len(sent), sent, nil)
}

func testPoison(t *testing.T, node *brokertest.RabbitNode) {
	c := newCluster(t, node, "poison")
	c.startPublisher()
	a := c.startWorker("a1", typeA, "FAULTWORKER_FAIL_PREFIX=poison")
	c.startWorker("b1", typeB)
	c.waitConsumers(typeA, 1)

	good, bad := bodies("good", 5), bodies("poison", 3)
	sent := append(slices.Clone(good), bad...)
	c.mustPost(sent...)

	// Type A parks the failing ones after 1 try + 2 retries; type B, whose
	// handler does not fail, completes all eight.
	c.settle("retry-and-poison", len(sent), sent, map[string][]string{typeA: bad})
	cfg := config.Default()
	cfg.AMQP.URL, cfg.Topic = node.URL(), c.topic
	c.ledger.waitUntil(t, 30*time.Second, "three parked events", func() bool {
		ready, _, err := c.queueState(broker.PoisonQueue(c.topic, typeA))

		return err == nil && ready == len(bad)
	})
	parked, err := broker.InspectPoison(cfg, typeA, 10)
	if err != nil {
		t.Fatalf("InspectPoison: %v", err)
	}
	var parkedBodies []string
	for _, p := range parked {
		m := p.Message.Metadata
		parkedBodies = append(parkedBodies, string(p.Message.Payload))
		if m.Get(broker.MetaPoisonAttempts) != "3" || m.Get(broker.MetaPoisonHandler) != typeA ||
			!strings.Contains(p.Reason(), "failing on purpose") {
			t.Errorf("parked %q with metadata %v, want 3 attempts by %s and the handler's error",
				p.Message.Payload, m, typeA)
		}
	}
	slices.Sort(parkedBodies)
	if !slices.Equal(parkedBodies, bad) {
		t.Fatalf("parked %v, want %v", parkedBodies, bad)
	}
	for _, b := range bad {
		if n := len(c.ledger.startedBy(typeA, b)); n != 3 {
			t.Errorf("%s tried %q %d times, want 3 (no loop)", typeA, b, n)
		}
	}
	if ready, _, _ := c.queueState(broker.PoisonQueue(c.topic, typeB)); ready != 0 {
		t.Errorf("type B parked %d events, want 0", ready)
	}

	// Replay into a healthy type A instance: each parked event completes once.
	stopAndWait(t, a, syscall.SIGTERM)
	c.startWorker("a2", typeA)
	ids, err := broker.ReplayPoison(t.Context(), cfg, typeA, 10)
	if err != nil || len(ids) != len(bad) {
		t.Fatalf("ReplayPoison: %v %v", ids, err)
	}
	c.settle("poison-replay", len(sent), sent, nil)
}

func stopAndWait(t *testing.T, inst *instance, sig syscall.Signal) time.Duration {
	t.Helper()
	start := time.Now()
	if err := inst.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", inst.name, err)
	}
	select {
	case <-inst.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of %v", inst.name, sig)
	}

	return time.Since(start)
}

// inFlight returns the first of bodies that group has started but not completed.
func (c *cluster) inFlight(group string, bodies []string) (string, []string) {
	for _, b := range bodies {
		if s := c.ledger.startedBy(group, b); len(s) > 0 && len(c.ledger.doneBy(group, b)) == 0 {
			return b, s
		}
	}

	return "", nil
}

func testKill(t *testing.T, node *brokertest.RabbitNode) {
	c := newCluster(t, node, "kill")
	c.startPublisher()
	a1 := c.startWorker("a1", typeA, "FAULTWORKER_DELAY=3s")
	a2 := c.startWorker("a2", typeA, "FAULTWORKER_DELAY=3s")
	c.startWorker("b1", typeB)
	c.waitConsumers(typeA, 2)

	sent := bodies("kill", 4)
	c.mustPost(sent...)

	var victim string
	var by []string
	c.ledger.waitUntil(t, 30*time.Second, "an event in flight on type A", func() bool {
		victim, by = c.inFlight(typeA, sent)

		return victim != ""
	})
	killed := a1
	if by[0] == a2.name {
		killed = a2
	}
	stopAndWait(t, killed, syscall.SIGKILL)
	t.Logf("killed %s while it handled %q", killed.name, victim)

	c.settle("kill-9", len(sent), sent, nil)
	if done := c.ledger.doneBy(typeA, victim); len(done) != 1 || strings.HasPrefix(done[0], killed.name+" ") {
		t.Errorf("%q completed by %v, want once by the surviving instance", victim, done)
	}
	survivor := a1
	if killed == a1 {
		survivor = a2
	}
	log, _ := os.ReadFile(survivor.logPath)
	if !strings.Contains(string(log), "handling redelivered event") {
		t.Errorf("the surviving instance did not log the redelivery")
	}
}

func testTerm(t *testing.T, node *brokertest.RabbitNode) {
	c := newCluster(t, node, "sigterm")
	c.startPublisher()
	a1 := c.startWorker("a1", typeA, "FAULTWORKER_DELAY=2s")
	c.startWorker("b1", typeB)
	c.waitConsumers(typeA, 1)

	sent := bodies("term", 3)
	c.mustPost(sent...)

	var victim string
	c.ledger.waitUntil(t, 30*time.Second, "an event in flight on type A", func() bool {
		victim, _ = c.inFlight(typeA, sent)

		return victim != ""
	})
	took := stopAndWait(t, a1, syscall.SIGTERM)
	if code := a1.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("a1 exited with %d after SIGTERM, want 0", code)
	}
	if done := c.ledger.doneBy(typeA, victim); len(done) != 1 {
		t.Fatalf("%q completed %v before exit, want once by a1", victim, done)
	}
	t.Logf("a1 finished %q and exited %s after SIGTERM (shutdown timeout 10s)", victim, took.Round(time.Millisecond))
	for _, b := range sent {
		if b != victim && len(c.ledger.startedBy(typeA, b)) > 0 {
			t.Errorf("a1 started %q after SIGTERM", b)
		}
	}

	// A fresh instance takes the rest; the finished one must not come back.
	c.startWorker("a2", typeA)
	c.settle("sigterm", len(sent), sent, nil)
}

func testTermTimeout(t *testing.T, node *brokertest.RabbitNode) {
	c := newCluster(t, node, "sigterm-timeout")
	c.startPublisher()
	a1 := c.startWorker("a1", typeA, "FAULTWORKER_DELAY=60s", "MILLRACE_CONSUMER_SHUTDOWN_TIMEOUT=1s")
	c.startWorker("b1", typeB)
	c.waitConsumers(typeA, 1)

	sent := bodies("slow", 1)
	c.mustPost(sent...)
	c.ledger.waitUntil(t, 30*time.Second, "the event in flight on type A", func() bool {
		victim, _ := c.inFlight(typeA, sent)

		return victim != ""
	})
	took := stopAndWait(t, a1, syscall.SIGTERM)
	t.Logf("a1 exited %s after SIGTERM with exit code %d (shutdown timeout 1s)",
		took.Round(time.Millisecond), a1.cmd.ProcessState.ExitCode())
	if took > 5*time.Second {
		t.Errorf("a1 took %s to exit, want about the 1s shutdown timeout", took)
	}
	if done := c.ledger.doneBy(typeA, sent[0]); len(done) != 0 {
		t.Fatalf("a1 completed %q before exiting: %v", sent[0], done)
	}

	c.startWorker("a2", typeA)
	c.settle("sigterm-timeout", len(sent), sent, nil)
}

// testBrokerRestart posts continuously while the broker stops and starts.
// With one instance per type, type A's runs throughout and type B's starts
// while the broker is down. With two per type (competing), B's second starts
// while it is down, and the instances of a type share the log of completed
// events (consumer.completed_ids_url), so that an event whose ack the outage
// cut off is not completed again by the other instance either.
func testBrokerRestart(t *testing.T, node *brokertest.RabbitNode, twoPerType bool) {
	scenario := "broker-restart"
	if twoPerType {
		scenario = "broker-restart-2-per-type"
	}
	c := newCluster(t, node, scenario)
	c.startPublisher()
	workerEnv := []string{"FAULTWORKER_DELAY=5ms"}
	if twoPerType {
		// Competing instances share the log of completed events, so an
		// event whose ack the outage cut off is not completed again by the
		// other instance.
		workerEnv = append(workerEnv, "MILLRACE_CONSUMER_COMPLETED_IDS_URL="+brokertest.RequireRedis(t))
	}
	c.startWorker("a1", typeA, workerEnv...)
	c.waitConsumers(typeA, 1)
	if twoPerType {
		c.startWorker("a2", typeA, workerEnv...)
		c.startWorker("b1", typeB, workerEnv...)
		c.waitConsumers(typeA, 2)
		c.waitConsumers(typeB, 1)
	}

	// Two clients post continuously until told to stop.
	var (
		mu        sync.Mutex
		sent      int
		acked     []string
		failed    int
		slowest   time.Duration
		otherCode []int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("restart-%d-%05d", client, i)
				status, took := c.post(body)
				mu.Lock()
				sent++
				slowest = max(slowest, took)
				switch status {
				case http.StatusOK:
					acked = append(acked, body)
				case http.StatusServiceUnavailable:
					failed++
				default:
					otherCode = append(otherCode, status)
				}
				mu.Unlock()
				if status != http.StatusOK {
					// Do not spin on a down broker; the next post is the probe.
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	counts := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()

		return len(acked), failed
	}

	c.ledger.waitUntil(t, 30*time.Second, "40 acknowledged events", func() bool { a, _ := counts(); return a >= 40 })
	node.Stop()
	c.ledger.waitUntil(t, 30*time.Second, "5 answers of 503 while the broker is down",
		func() bool { _, f := counts(); return f >= 5 })

	// A service that starts while the broker is down must connect once it is back.
	late := "b1"
	if twoPerType {
		late = "b2"
	}
	c.startWorker(late, typeB, workerEnv...)
	ackedDuringOutage, _ := counts()
	node.Start()
	c.ledger.waitUntil(t, 60*time.Second, "40 more acknowledged events after the restart",
		func() bool { a, _ := counts(); return a >= ackedDuringOutage+40 })
	if twoPerType {
		c.waitConsumers(typeA, 2)
		c.waitConsumers(typeB, 2)
	} else {
		c.waitConsumers(typeA, 1)
		c.waitConsumers(typeB, 1)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("broker restart: %d posted, %d got 200, %d got 503, slowest answer %s",
		sent, len(acked), failed, slowest.Round(time.Millisecond))
	if len(otherCode) > 0 {
		t.Errorf("answers other than 200 and 503: %v", otherCode)
	}
	if slowest > publishTimeout+time.Second {
		t.Errorf("slowest answer took %s, want at most the %s publish timeout plus 1s", slowest, publishTimeout)
	}
	c.settle(scenario, sent, acked, nil)
}
