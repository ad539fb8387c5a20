// Command poison shows or replays the events a consumer group parked in its
// poison queue after its handler failed on every retry.
//
//	poison -group consumer            # list parked events, leave them parked
//	poison -group consumer -replay    # move them back into the group's queue
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "poison: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("poison", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configFile := flags.String("config", "",
		"configuration file (default: $"+config.EnvFile+", else "+config.DefaultFile+" when present)")
	group := flags.String("group", "", "consumer group whose poison queue to read (required)")
	replay := flags.Bool("replay", false, "move the parked events back into the group's queue")
	limit := flags.Int("limit", 1000, "handle at most this many events")
	if err := flags.Parse(args); err != nil {
		return err
	}

	cfg, _, err := config.Load(*configFile, environ)
	if err != nil {
		return err
	}
	if !slices.Contains(cfg.Groups, *group) {
		return fmt.Errorf("-group must be one of the configured groups %v, got %q", cfg.Groups, *group)
	}
	if *limit < 1 {
		return fmt.Errorf("-limit must be at least 1, got %d", *limit)
	}
	queue := broker.PoisonQueue(cfg.Topic, *group)

	if *replay {
		ids, err := broker.ReplayPoison(ctx, cfg, *group, *limit)
		for _, id := range ids {
			fmt.Fprintf(stdout, "replayed %s into %s\n", id, broker.QueueName(cfg.Topic, *group))
		}
		if errors.Is(err, broker.ErrPoisonEmpty) {
			fmt.Fprintf(stdout, "%s is empty, nothing to replay\n", queue)

			return nil
		}

		return err
	}

	parked, err := broker.InspectPoison(cfg, *group, *limit)
	if err != nil {
		return err
	}
	for _, e := range parked {
		m := e.Message.Metadata
		fmt.Fprintf(stdout, "%s attempts=%s handler=%s parked_at=%s reason=%q body=%q\n",
			e.Message.UUID, m.Get(broker.MetaPoisonAttempts), m.Get(broker.MetaPoisonHandler),
			m.Get(broker.MetaPoisonedAt), e.Reason(), e.Message.Payload)
	}
	fmt.Fprintf(stdout, "%d event(s) parked in %s\n", len(parked), queue)

	return nil
}
