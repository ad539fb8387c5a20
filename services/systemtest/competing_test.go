package systemtest

import (
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
)

// seedLine matches the line a consumer prints for each event it handles.
var seedLine = regexp.MustCompile(`^(Consumer|Extra Special Consumer) \(Instance: (\d+)\) received: (.*)$`)

func TestEachEventIsHandledOnceByEachTypeAndInstancesShareTheWork(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	// Classic queues, the default, and quorum queues, which a RabbitMQ
	// cluster replicates (amqp.queue_type); a single node runs them too.
	for _, queueType := range []string{"classic", "quorum"} {
		t.Run(queueType+" queues", func(t *testing.T) {
			testCompeting(t, amqpURL, queueType)
		})
	}
}

func testCompeting(t *testing.T, amqpURL, queueType string) {
	topic := brokertest.Topic(t)
	groups := []string{"consumer", "extraspecialconsumer"}
	brokertest.DeleteAMQPTopology(t, amqpURL, topic,
		broker.QueueName(topic, groups[0]), broker.QueueName(topic, groups[1]))

	addr := freeAddr(t)
	env := []string{
		"MILLRACE_AMQP_URL=" + amqpURL,
		"MILLRACE_AMQP_QUEUE_TYPE=" + queueType,
		"MILLRACE_TOPIC=" + topic,
		"MILLRACE_PUBLISHER_LISTEN=" + addr,
	}
	start(t, "publisher", "publisher", env...)
	instances := map[string][]*process{}
	for _, group := range groups {
		for i := 1; i <= 2; i++ {
			instances[group] = append(instances[group], start(t, fmt.Sprintf("%s-%d", group, i), group, env...))
		}
	}

	// Post only once both instances of each type consume, so both get a share.
	for _, group := range groups {
		queue := broker.QueueName(topic, group)
		eventually(t, 30*time.Second, "2 consumers on "+queue, func() bool {
			n, err := consumerCount(amqpURL, queue)

			return err == nil && n == 2
		})
	}

	const events = 50
	// The delivery audit is the second oracle, beside the seed lines.
	auditor := startAudit(t, events, env...)
	bodies := make([]string, events)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("event %02d of %s", i, topic)
	}
	postAll(t, addr, bodies)

	for _, group := range groups {
		eventually(t, 30*time.Second, fmt.Sprintf("%d events handled by %s", events, group), func() bool {
			return len(handled(t, instances[group])) >= events
		})
	}
	requireCleanAudit(t, auditor)
	// Stop every instance before the final count, so a late duplicate would be seen.
	for _, group := range groups {
		for _, p := range instances[group] {
			if err := p.stop(t, syscall.SIGTERM); err != nil {
				t.Errorf("%s exited with %v", p.name, err)
			}
		}
	}

	for _, group := range groups {
		byBody := handled(t, instances[group])
		perInstance := map[int]int{}
		for _, body := range bodies {
			pids := byBody[body]
			if len(pids) != 1 {
				t.Errorf("%s handled %q %d times (instances %v), want exactly once", group, body, len(pids), pids)
			}
			for _, pid := range pids {
				perInstance[pid]++
			}
		}
		if len(byBody) != events {
			t.Errorf("%s handled %d distinct bodies, want %d", group, len(byBody), events)
		}
		for _, p := range instances[group] {
			if perInstance[p.cmd.Process.Pid] == 0 {
				t.Errorf("%s handled none of the events; both instances should share them (split %v)", p.name, perInstance)
			}
		}
		t.Logf("%s: %d events, split between instances %v", group, events, perInstance)
	}

	assertOneQueuePerType(t, amqpURL, topic, groups)
}

// handled maps each body to the PIDs that printed it, checking that every
// line is the type's seed line with the printing process's own PID.
func handled(t *testing.T, procs []*process) map[string][]int {
	t.Helper()
	byBody := map[string][]int{}
	for _, p := range procs {
		wantLabel := "Consumer"
		if strings.HasPrefix(p.name, "extraspecialconsumer") {
			wantLabel = "Extra Special Consumer"
		}
		for _, line := range p.lines() {
			m := seedLine.FindStringSubmatch(line)
			if m == nil || m[1] != wantLabel {
				t.Errorf("%s printed %q, not a %s seed line", p.name, line, wantLabel)

				continue
			}
			pid, _ := strconv.Atoi(m[2])
			if pid != p.cmd.Process.Pid {
				t.Errorf("%s (pid %d) printed instance %d", p.name, p.cmd.Process.Pid, pid)
			}
			byBody[m[3]] = append(byBody[m[3]], pid)
		}
	}

	return byBody
}

// postAll posts every body from 8 concurrent clients; each must be answered
// 200 "received: <body>".
func postAll(t *testing.T, addr string, bodies []string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for body := range work {
				status, resp, err := post(client, addr, body)
				if err != nil || status != http.StatusOK || resp != "received: "+body {
					t.Errorf("POST %q: status %d, body %q, error %v", body, status, resp, err)
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
}

func consumerCount(amqpURL, queue string) (int, error) {
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)

	return q.Consumers, err
}

// assertOneQueuePerType checks that the broker holds exactly the groups'
// queues, and their poison queues, for topic: asked of rabbitmqctl where it can be run, else by a
// passive declare of each expected queue.
func assertOneQueuePerType(t *testing.T, amqpURL, topic string, groups []string) {
	t.Helper()
	// One work queue per type, and that type's poison queue beside it.
	var want []string
	for _, g := range groups {
		want = append(want, broker.QueueName(topic, g), broker.PoisonQueue(topic, g))
	}
	slices.Sort(want)

	out, err := exec.Command("rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name").Output()
	if err != nil {
		t.Logf("rabbitmqctl unavailable (%v); checking the expected queues only", err)
		for _, q := range want {
			if _, err := consumerCount(amqpURL, q); err != nil {
				t.Errorf("queue %s: %v", q, err)
			}
		}

		return
	}

	var got []string
	for line := range strings.Lines(string(out)) {
		if name := strings.TrimSpace(line); strings.HasPrefix(name, topic) {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("queues for topic %s = %v, want exactly %v", topic, got, want)
	}
}

func TestPostingAgainGoesToTheOtherIdleInstanceOfEachType(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	groups := []string{"consumer", "extraspecialconsumer"}
	brokertest.DeleteAMQPTopology(t, amqpURL, topic,
		broker.QueueName(topic, groups[0]), broker.QueueName(topic, groups[1]))

	addr := freeAddr(t)
	env := []string{"MILLRACE_AMQP_URL=" + amqpURL, "MILLRACE_TOPIC=" + topic, "MILLRACE_PUBLISHER_LISTEN=" + addr}
	start(t, "publisher", "publisher", env...)
	instances := map[string][]*process{}
	for _, group := range groups {
		for i := 1; i <= 2; i++ {
			instances[group] = append(instances[group], start(t, fmt.Sprintf("%s-%d", group, i), group, env...))
		}
		queue := broker.QueueName(topic, group)
		eventually(t, 30*time.Second, "2 consumers on "+queue, func() bool {
			n, err := consumerCount(amqpURL, queue)

			return err == nil && n == 2
		})
	}

	// As in the README: Hello World, then Hello Jack once it has been handled.
	for _, body := range []string{"Hello World", "Hello Jack"} {
		postAll(t, addr, []string{body})
		for _, group := range groups {
			eventually(t, 30*time.Second, group+" to handle "+body, func() bool {
				return len(handled(t, instances[group])[body]) > 0
			})
		}
	}

	for _, group := range groups {
		byBody := handled(t, instances[group])
		world, jack := byBody["Hello World"], byBody["Hello Jack"]
		if len(world) != 1 || len(jack) != 1 {
			t.Fatalf("%s: Hello World handled by %v, Hello Jack by %v; want one instance each", group, world, jack)
		}
		if world[0] == jack[0] {
			t.Errorf("%s: instance %d handled both events; the idle other instance should take the second", group, world[0])
		}
	}
}
