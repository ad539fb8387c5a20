// Package logging builds the slog logger every service writes to stderr, and
// the Watermill adapter that sends the library's own logs through it.
package logging

import (
	"io"
	"log/slog"
	"os"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/millrace/millrace/pkg/config"
)

// New returns a logger in the configured format and level, with service and
// instance on every line. cfg must have been validated.
func New(cfg config.LogConfig, w io.Writer, service string) *slog.Logger {
	level, _ := config.ParseLevel(cfg.Level)
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: errorsAsText}

	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}

	return slog.New(h).With("service", service, "instance", Instance())
}

// errorsAsText logs an error attribute as its message. slog formats values
// with %+v, which makes errors from github.com/pkg/errors (Watermill's) print
// a stack trace of source paths on every line.
func errorsAsText(_ []string, a slog.Attr) slog.Attr {
	if err, ok := a.Value.Any().(error); ok && a.Value.Kind() == slog.KindAny {
		return slog.String(a.Key, err.Error())
	}

	return a
}

// Instance names this process among the instances of its service: its PID,
// as the seed's output lines do.
func Instance() int {
	return os.Getpid()
}

// Watermill adapts logger for Watermill. The library logs every message at
// Info and Debug; those become Debug and Trace-as-Debug so that Info stays a
// lifecycle level.
func Watermill(logger *slog.Logger) watermill.LoggerAdapter {
	return watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}
