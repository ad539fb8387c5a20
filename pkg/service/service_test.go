package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
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
