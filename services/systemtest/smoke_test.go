package systemtest

import (
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
)

var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// TestRunAllDoesWhatTheREADMESays starts `go tool task run-all`, posts Hello
// World as the README's curl does, and stops everything as Ctrl-C would.
func TestRunAllDoesWhatTheREADMESays(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	if binDir == "" {
		t.Skip("system tests do not run with -short")
	}
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, amqpURL, topic,
		broker.QueueName(topic, "consumer"), broker.QueueName(topic, "extraspecialconsumer"))
	addr := freeAddr(t)

	cmd := exec.Command("go", "tool", "task", "run-all")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(),
		"MILLRACE_AMQP_URL="+amqpURL,
		"MILLRACE_TOPIC="+topic,
		"MILLRACE_PUBLISHER_LISTEN="+addr,
		"RUN_ALL_ADMIN_PORTS="+freeAdminPorts(t),
		"NO_COLOR=1", // Task colours its prefixes under CI=true otherwise
	)
	// Its own process group, so that the interrupt reaches every instance, as
	// Ctrl-C in a terminal does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	runAll := run(t, "run-all", cmd)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	client := &http.Client{Timeout: 10 * time.Second}
	var status int
	var body string
	eventually(t, 2*time.Minute, "the publisher to answer POST /stuff", func() bool {
		select {
		case <-runAll.done:
			t.Fatalf("run-all exited early (%v):\n%s", runAll.err, runAll.stderrText())
		default:
		}
		var err error
		status, body, err = post(client, addr, "Hello World")

		return err == nil
	})
	if status != http.StatusOK || body != "received: Hello World" {
		t.Fatalf("POST /stuff answered %d %q, want 200 %q", status, body, "received: Hello World")
	}

	consumerLine := regexp.MustCompile(`^\[consumer-[12]\s*\] Consumer \(Instance: \d+\) received: Hello World$`)
	specialLine := regexp.MustCompile(`^\[extraspecialconsumer-[12]\s*\] Extra Special Consumer \(Instance: \d+\) received: Hello World$`)
	count := func(re *regexp.Regexp) int {
		n := 0
		for _, line := range runAll.lines() {
			if re.MatchString(ansiEscape.ReplaceAllString(line, "")) {
				n++
			}
		}

		return n
	}
	eventually(t, time.Minute, "a seed line from each consumer type", func() bool {
		return count(consumerLine) > 0 && count(specialLine) > 0
	})

	// Ctrl-C: every instance drains and exits, and run-all with them.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-runAll.done:
		if runAll.err != nil {
			t.Errorf("run-all exited with %v after Ctrl-C, want a clean exit", runAll.err)
		}
	case <-time.After(time.Minute):
		t.Fatal("run-all did not stop within a minute of Ctrl-C")
	}

	if n := count(consumerLine); n != 1 {
		t.Errorf("Consumer handled Hello World %d times, want exactly once", n)
	}
	if n := count(specialLine); n != 1 {
		t.Errorf("Extra Special Consumer handled Hello World %d times, want exactly once", n)
	}
	if t.Failed() {
		t.Logf("run-all output:\n%s\n%s", strings.Join(runAll.lines(), "\n"), runAll.stderrText())
	}
}

// freeAdminPorts is a RUN_ALL_ADMIN_PORTS value of free ports: run-all stops
// every instance when one cannot take its port, and the default ones may be
// in use on a shared machine.
func freeAdminPorts(t *testing.T) string {
	t.Helper()
	var ports []string
	for _, name := range []string{"consumer-1", "consumer-2", "extraspecialconsumer-1", "extraspecialconsumer-2"} {
		_, port, _ := strings.Cut(freeAddr(t), ":")
		ports = append(ports, name+"="+port)
	}

	return strings.Join(ports, " ")
}
