package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/service"
)

func TestRunRefusesTheInMemoryBackend(t *testing.T) {
	t.Parallel()
	ran := false
	run := func(context.Context, config.Config, *slog.Logger) error {
		ran = true

		return nil
	}

	err := service.Run(context.Background(), "consumer", nil,
		[]string{"MILLRACE_BACKEND=gochannel"}, io.Discard, run)

	if !errors.Is(err, broker.ErrInProcessOnly) {
		t.Fatalf("want ErrInProcessOnly, got %v", err)
	}
	if ran {
		t.Fatal("the service ran on a backend that cannot reach the other services")
	}
}

func TestRunChecksItsArguments(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		args    []string
		wantErr string // "" means no error
	}{
		{name: "-h prints the usage and is no failure", args: []string{"-h"}},
		{name: "an unknown flag is an error", args: []string{"-nope"}, wantErr: "flag provided but not defined: -nope"},
		{name: "a stray argument is an error", args: []string{"extra"}, wantErr: `unexpected arguments ["extra"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ran := false
			run := func(context.Context, config.Config, *slog.Logger) error {
				ran = true

				return nil
			}

			err := service.Run(context.Background(), "publisher", tt.args, nil, io.Discard, run)

			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Run = %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
			if ran {
				t.Error("the service ran")
			}
		})
	}
}

func TestRunWhenStoppedWhileStarting(t *testing.T) {
	errBroker := errors.New("broker refused")

	tests := []struct {
		name    string
		runErr  func(ctx context.Context) error
		wantErr error
	}{
		{
			name:   "a start cut short by the stop signal is a clean stop",
			runErr: func(ctx context.Context) error { return fmt.Errorf("connecting to broker: %w", ctx.Err()) },
		},
		{
			name:    "a failure of its own while stopping is still a failure",
			runErr:  func(context.Context) error { return errBroker },
			wantErr: errBroker,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			run := func(ctx context.Context, _ config.Config, _ *slog.Logger) error { return tt.runErr(ctx) }

			err := service.Run(ctx, "consumer", nil, nil, io.Discard, run)

			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Run = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
