package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestWatermillRouterLogsHandlerErrorsAtDebugOnly(t *testing.T) {
	tests := []struct {
		name    string
		level   slog.Level
		message string
		want    string // "" means nothing logged
	}{
		{name: "the router's handler error goes to Debug", level: slog.LevelDebug,
			message: "Handler returned error", want: "level=DEBUG"},
		{name: "the router's handler error is dropped at Info", level: slog.LevelInfo,
			message: "Handler returned error", want: ""},
		{name: "any other router error stays at Error", level: slog.LevelInfo,
			message: "Failed to close subscriber", want: "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			WatermillRouter(logger).With(watermill.LogFields{"handler_name": "h"}).
				Error(tt.message, errors.New("boom"), nil)

			got := buf.String()
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("logged %q, want a line with %q", got, tt.want)
			}
			if tt.want != "" && !strings.Contains(got, "handler_name=h") {
				t.Errorf("logged %q without the adapter's fields", got)
			}
		})
	}
}
