// Command faultworker is a consumer for the fault-injection tests only: it
// runs pkg/worker like the real consumer services, as the group named by
// $FAULTWORKER_GROUP, with a handler that is slow or fails on demand, and
// prints "start <body>" and "done <body>" on stdout around each event so
// that a test can see what is in flight and count what was completed.
//
// Its environment: FAULTWORKER_GROUP (required), FAULTWORKER_DELAY (a
// duration the handler takes, default 0) and FAULTWORKER_FAIL_PREFIX (events
// whose body starts with it always fail; empty means none fail). The done
// line also carries the event's ID and whether it was redelivered.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
	"github.com/millrace/millrace/pkg/service"
	"github.com/millrace/millrace/pkg/worker"
)

func main() {
	service.Main("faultworker", run)
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	group := os.Getenv("FAULTWORKER_GROUP")
	if group == "" {
		return errors.New("FAULTWORKER_GROUP is required")
	}
	var delay time.Duration
	if raw := os.Getenv("FAULTWORKER_DELAY"); raw != "" {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("FAULTWORKER_DELAY: %w", err)
		}
		delay = d
	}
	failPrefix := os.Getenv("FAULTWORKER_FAIL_PREFIX")

	return worker.Run(ctx, cfg, group, newHandler(delay, failPrefix), logger)
}

// out serialises the lines so that each is written whole.
var out sync.Mutex

func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Fprintf(os.Stdout, format+"\n", args...)
}

func newHandler(delay time.Duration, failPrefix string) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		body := string(msg.Payload)
		say("start %s", body)
		if failPrefix != "" && strings.HasPrefix(body, failPrefix) {
			return errors.New("failing on purpose")
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		say("done %s id=%s redelivered=%s", body, msg.UUID, msg.Metadata.Get(events.MetaRedelivered))

		return nil
	}
}
