package systemtest

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
)

func TestTheAuditFailsWhenATypeNeverHandlesAnEvent(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, amqpURL, topic,
		broker.QueueName(topic, "consumer"), broker.QueueName(topic, "extraspecialconsumer"))
	addr := freeAddr(t)
	env := []string{
		"MILLRACE_AMQP_URL=" + amqpURL,
		"MILLRACE_TOPIC=" + topic,
		"MILLRACE_PUBLISHER_LISTEN=" + addr,
	}
	// No Extra Special Consumer runs: its copy of the event waits in its queue.
	start(t, "publisher", "publisher", env...)
	start(t, "consumer", "consumer", env...)
	auditor := startAuditWith(t, []string{"-events", "1", "-window", "5s", "-settle", "0s"}, env...)

	client := &http.Client{Timeout: 10 * time.Second}
	eventually(t, 30*time.Second, "the publisher to take the event", func() bool {
		status, _, err := post(client, addr, "Hello World")

		return err == nil && status == http.StatusOK
	})

	select {
	case <-auditor.done:
	case <-time.After(time.Minute):
		t.Fatal("the audit did not finish after its 5s window")
	}
	report := strings.Join(auditor.lines(), "\n")
	if auditor.err == nil {
		t.Fatalf("the audit exited 0 with a type missing:\n%s", report)
	}
	for _, want := range []string{": consumer ok by ", " extraspecialconsumer missing;", "; 1 violations"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
}

// startAudit runs the audit command as the oracle of a test: it follows the
// audit trail until events events are each dealt with by every type (or the
// window passes), then reports. It returns once the audit is listening, so
// that every event posted afterwards is audited.
func startAudit(t *testing.T, events int, env ...string) *process {
	t.Helper()

	return startAuditWith(t, []string{"-events", strconv.Itoa(events), "-window", "2m", "-settle", "2s", "-all"}, env...)
}

// startAuditWith runs the audit with args and returns once it is listening.
func startAuditWith(t *testing.T, args []string, env ...string) *process {
	t.Helper()
	if binDir == "" {
		t.Skip("system tests do not run with -short")
	}
	cmd := exec.Command(filepath.Join(binDir, "audit"), args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	p := run(t, "audit", cmd)

	eventually(t, 30*time.Second, "the audit to listen", func() bool {
		select {
		case <-p.done:
			t.Fatalf("the audit exited before listening (%v):\n%s", p.err, p.stderrText())
		default:
		}

		return strings.Contains(p.stderrText(), "msg=auditing")
	})

	return p
}

// requireCleanAudit waits for the audit to finish and fails the test unless
// it found every event handled exactly once by every type.
func requireCleanAudit(t *testing.T, p *process) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		t.Fatal("the audit did not finish within its window")
	}

	report := strings.Join(p.lines(), "\n")
	if p.err != nil || !strings.Contains(report, "; 0 violations") {
		t.Fatalf("the audit found violations (exit %v):\n%s\n%s", p.err, report, p.stderrText())
	}
	t.Log(p.lines()[len(p.lines())-1])
}
