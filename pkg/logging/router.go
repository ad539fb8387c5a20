package logging

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// routerHandlerError is the line Watermill's router logs, at Error, for every
// handler error it nacks.
const routerHandlerError = "Handler returned error"

// WatermillRouter is Watermill for a router whose handler errors are already
// logged, with the event's identifiers, by a middleware
// (observe.EventMetrics.Middleware): the router's own line for each of them
// goes to Debug, so that each error is logged once at Error.
func WatermillRouter(logger *slog.Logger) watermill.LoggerAdapter {
	return Watermill(slog.New(demoting{inner: logger.Handler(), message: routerHandlerError}))
}

// demoting sends records with one message at Debug instead of their level.
type demoting struct {
	inner   slog.Handler
	message string
}

func (d demoting) Enabled(ctx context.Context, level slog.Level) bool {
	return d.inner.Enabled(ctx, level)
}

func (d demoting) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == d.message && r.Level > slog.LevelDebug {
		if !d.inner.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}

	return d.inner.Handle(ctx, r)
}

func (d demoting) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoting{inner: d.inner.WithAttrs(attrs), message: d.message}
}

func (d demoting) WithGroup(name string) slog.Handler {
	return demoting{inner: d.inner.WithGroup(name), message: d.message}
}
