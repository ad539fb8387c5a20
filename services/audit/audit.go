package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/audit"
	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
)

// run follows the audit trail as a broadcast viewer, then writes the report
// to out and returns an error when it found a violation.
func run(ctx context.Context, cfg config.Config, opts options, out io.Writer, logger *slog.Logger) error {
	sub, err := broker.NewBroadcastSubscriber(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := sub.Close(); err != nil {
			logger.Error("closing subscriber", "error", err)
		}
	}()
	msgs, err := sub.Subscribe(context.WithoutCancel(ctx), cfg.AuditTopic())
	if err != nil {
		return fmt.Errorf("subscribing to %s: %w", cfg.AuditTopic(), err)
	}
	logger.Info("auditing", "audit_topic", cfg.AuditTopic(), "groups", cfg.Groups,
		"window", opts.window, "events", opts.events)

	window := time.NewTimer(opts.window)
	defer window.Stop()
	records := collect(ctx, msgs, cfg.Groups, opts, window.C, logger)
	rep := audit.Check(records, cfg.Groups)
	if err := rep.WriteText(out, opts.all); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}

	if opts.events > 0 && len(rep.Events) < opts.events {
		return fmt.Errorf("saw %d published events, expected %d; %d violations",
			len(rep.Events), opts.events, rep.Violations)
	}
	if rep.Violations > 0 {
		return fmt.Errorf("%d violations", rep.Violations)
	}

	return nil
}

// collect gathers records until windowEnd fires, ctx ends, or the expected
// events are all dealt with; then, for opts.settle, it keeps only the
// records of events already seen, so that none arrives unaudited at the end.
func collect(
	ctx context.Context,
	msgs <-chan *message.Message,
	groups []string,
	opts options,
	windowEnd <-chan time.Time,
	logger *slog.Logger,
) []audit.Record {
	var records []audit.Record
	checked := 0
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()

	receive := func(msg *message.Message) (audit.Record, bool) {
		r, err := audit.Parse(msg.Payload)
		msg.Ack()
		if err != nil {
			logger.Warn("ignoring a message on the audit topic", "message_uuid", msg.UUID, "error", err)
		}

		return r, err == nil
	}

listen:
	for {
		// The window's end wins over records waiting to be read.
		select {
		case <-windowEnd:
			break listen
		default:
		}
		select {
		case <-ctx.Done():
			return records
		case <-windowEnd:
			break listen
		case <-check.C:
			// Checking is linear in the records: only when some came in.
			if opts.events > 0 && len(records) > checked {
				checked = len(records)
				rep := audit.Check(records, groups)
				if len(rep.Events) >= opts.events && rep.Complete() {
					break listen
				}
			}
		case msg, ok := <-msgs:
			if !ok {
				return records
			}
			if r, ok := receive(msg); ok {
				records = append(records, r)
			}
		}
	}

	known := map[string]bool{}
	for _, r := range records {
		if r.Kind == audit.KindPublished {
			known[r.EventID] = true
		}
	}
	settle := time.After(opts.settle)
	for {
		select {
		case <-ctx.Done():
			return records
		case <-settle:
			return records
		case msg, ok := <-msgs:
			if !ok {
				return records
			}
			if r, ok := receive(msg); ok && r.Kind != audit.KindPublished && known[r.EventID] {
				records = append(records, r)
			}
		}
	}
}
