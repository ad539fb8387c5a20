// Package service holds what every millrace binary does the same way at its
// edges: flags, configuration, logging, signals and the exit code.
package service

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

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// RunFunc is a service's startup script. It returns when ctx ends and the
// service has shut down, or when it cannot go on.
type RunFunc func(ctx context.Context, cfg config.Config, logger *slog.Logger) error

// Main runs a service until SIGINT or SIGTERM and exits non-zero, with one
// line on stderr, if it fails. It never returns.
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, name, os.Args[1:], os.Environ(), os.Stderr, run)
	stop()
	if err != nil {
		if !errors.As(err, new(loggedError)) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		os.Exit(1)
	}
}

// Run parses args, loads the configuration, builds the logger and calls run.
func Run(ctx context.Context, name string, args, environ []string, stderr io.Writer, run RunFunc) error {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.SetOutput(stderr)
	configFile := flags.String("config", "",
		"configuration file (default: $"+config.EnvFile+", else "+config.DefaultFile+" when present)")
	showVersion := flags.Bool("version", false, "print the version on stdout and exit")
	err := flags.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is printed; asking for it is no failure
	}
	if err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %s takes flags only (-h lists them)", flags.Args(), name)
	}
	if *showVersion {
		_, err := fmt.Fprintln(os.Stdout, name, Version)

		return err
	}

	cfg, file, err := config.Load(*configFile, environ)
	if err != nil {
		return err
	}

	// Each service is a process of its own; an in-memory backend would
	// silently keep the publisher's events from the consumers.
	if cfg.Backend == "gochannel" {
		return broker.ErrInProcessOnly
	}

	logger := logging.New(cfg.Log, stderr, name)
	if file == "" {
		file = "built-in defaults"
	}
	logger.Info("starting", "version", Version, "config_file", file, "config", cfg)

	err = run(ctx, cfg, logger)
	// A stop asked for while the service still starts (Ctrl-C while it
	// waits for its broker) ends what was under way: no failure.
	if ctx.Err() != nil && (errors.Is(err, broker.ErrInterrupted) || errors.Is(err, context.Canceled)) {
		logger.Info("stopped while starting", "reason", ctx.Err())

		return nil
	}
	if err != nil {
		logger.Error("stopped with error", "error", err)

		return loggedError{err}
	}
	logger.Info("stopped")

	return nil
}

// loggedError is an error the service's logger has already reported.
type loggedError struct{ error }

func (e loggedError) Unwrap() error { return e.error }
