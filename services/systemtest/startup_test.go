package systemtest

import (
	"strings"
	"testing"
	"time"
)

func TestAServiceThatCannotReachTheBrokerExitsWithAClearError(t *testing.T) {
	for _, binary := range []string{"publisher", "consumer", "extraspecialconsumer"} {
		t.Run(binary, func(t *testing.T) {
			t.Parallel()
			closed := freeAddr(t) // nothing listens there
			started := time.Now()

			p := start(t, binary, binary,
				"MILLRACE_AMQP_URL=amqp://app:s3cret@"+closed+"/",
				"MILLRACE_AMQP_CONNECT_TIMEOUT=1s",
				"MILLRACE_PUBLISHER_LISTEN="+freeAddr(t),
			)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatal("still running 30s after a 1s connect timeout")
			}

			if p.err == nil {
				t.Error("exited 0, want a non-zero exit")
			}
			if elapsed := time.Since(started); elapsed > 15*time.Second {
				t.Errorf("took %s to give up, want about the 1s connect timeout", elapsed)
			}
			stderr := p.stderrText()
			if strings.Contains(stderr, "s3cret") {
				t.Errorf("the password is in the output:\n%s", stderr)
			}
			if !strings.Contains(stderr, "amqp://app:xxxxx@"+closed) {
				t.Errorf("the output does not name the broker URL (password masked):\n%s", stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") || strings.Contains(stderr, ".go:") {
				t.Errorf("the output has a stack trace:\n%s", stderr)
			}
			last := strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:])
			if !strings.Contains(last, "level=ERROR") || !strings.Contains(last, `error="connecting to AMQP broker`) {
				t.Errorf("last line = %q, want one error line saying the broker could not be reached", last)
			}
		})
	}
}
