package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	pkgerrors "github.com/pkg/errors"

	"github.com/millrace/millrace/pkg/config"
)

func TestJSONLinesCarryServiceAndInstance(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := New(config.LogConfig{Level: "info", Format: "json"}, &buf, "consumer")

	logger.Info("handling events", "topic", "stuff")
	Watermill(logger).Error("Cannot reconnect", pkgerrors.New("dial refused"), nil)

	for line := range strings.Lines(buf.String()) {
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, line)
		}
		if fields["service"] != "consumer" {
			t.Errorf("service = %v, want consumer: %s", fields["service"], line)
		}
		if fields["instance"] != float64(Instance()) {
			t.Errorf("instance = %v, want %d: %s", fields["instance"], Instance(), line)
		}
	}
}

func TestErrorsAreLoggedWithoutStackTraces(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := New(config.LogConfig{Level: "debug", Format: "text"}, &buf, "publisher")
	err := fmt.Errorf("connecting: %w", pkgerrors.Wrap(pkgerrors.New("refused"), "cannot connect to AMQP"))

	logger.Warn("broker not reachable", "error", err)
	Watermill(logger).Error("Cannot reconnect", pkgerrors.New("refused"), nil)

	if strings.Contains(buf.String(), ".go:") {
		t.Errorf("a stack trace was logged:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `error="connecting: cannot connect to AMQP: refused"`) {
		t.Errorf("the error message is missing:\n%s", buf.String())
	}
}
