// Command audit is the delivery audit: it follows the audit trail for a
// window (or until interrupted, or until a number of events are all dealt
// with), then reports, for every event published meanwhile, whether each
// consumer type handled it exactly once, and exits non-zero on any violation.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/service"
)

// options are the audit's own flags.
type options struct {
	window time.Duration
	events int
	settle time.Duration
	all    bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "audit: %v\n", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("audit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: audit [flags]\n\n"+
			"Follows the audit trail and reports, for every event published while it listens,\n"+
			"whether each consumer type handled it exactly once. Exits 1 on any violation.")
		flags.PrintDefaults()
	}
	var opts options
	configFile := flags.String("config", "", "configuration file (as for the services)")
	flags.DurationVar(&opts.window, "window", time.Minute, "listen this long at most; Ctrl-C ends the window early")
	flags.IntVar(&opts.events, "events", 0,
		"stop early once this many events were published and every type dealt with each; "+
			"fewer seen by the end of the window is a violation")
	flags.DurationVar(&opts.settle, "settle", 2*time.Second,
		"after the window, keep listening this long for late and duplicate handling of the events seen")
	flags.BoolVar(&opts.all, "all", false, "list every event, not only those with a violation")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if opts.window <= 0 || opts.settle < 0 || opts.events < 0 {
		return errors.New("-window must be positive, -settle and -events not negative")
	}

	var serviceArgs []string
	if *configFile != "" {
		serviceArgs = []string{"-config", *configFile}
	}

	return service.Run(ctx, "audit", serviceArgs, environ, stderr,
		func(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
			return run(ctx, cfg, opts, stdout, logger)
		})
}
