package systemtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startAudit runs the audit command as the oracle of a test: it follows the
// audit trail until events events are each dealt with by every type (or the
// window passes), then reports. It returns once the audit is listening, so
// that every event posted afterwards is audited.
func startAudit(t *testing.T, events int, env ...string) *process {
	t.Helper()
	if binDir == "" {
		t.Skip("system tests do not run with -short")
	}
	cmd := exec.Command(filepath.Join(binDir, "audit"),
		"-events", strconv.Itoa(events), "-window", "2m", "-settle", "2s", "-all")
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
