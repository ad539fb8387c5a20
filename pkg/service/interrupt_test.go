package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/service"
)

func TestAnInterruptionWhileWaitingForTheBrokerIsNoFailure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
		// The user presses Ctrl-C while the service retries its first connection.
		time.AfterFunc(300*time.Millisecond, cancel)
		pub, err := broker.NewPublisher(ctx, cfg, logger)
		if err != nil {
			return err
		}

		return pub.Close()
	}
	var stderr bytes.Buffer

	// Nothing listens on port 1 of the loopback address.
	err := service.Run(ctx, "publisher", nil, []string{"MILLRACE_AMQP_URL=amqp://guest:guest@127.0.0.1:1/"}, &stderr, run)

	if err != nil {
		t.Fatalf("Run returned %v, want nil (exit 0)", err)
	}
	if !strings.Contains(stderr.String(), "stopped while starting") {
		t.Errorf("the log does not say why it stopped:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), "gave up") {
		t.Errorf("the log reports a timeout:\n%s", stderr.String())
	}
}
