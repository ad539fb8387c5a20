// Command consumer is the Consumer service: it prints every event it handles.
// Its instances compete on the "consumer" group, so each event is handled by
// exactly one of them.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/service"
	"github.com/millrace/millrace/pkg/worker"
)

// group is this service type's consumer group.
const group = "consumer"

func main() {
	service.Main(group, run)
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return worker.Run(ctx, cfg, group, worker.PrintHandler(os.Stdout, "Consumer", os.Getpid()), logger)
}
