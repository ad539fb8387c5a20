// Command extraspecialconsumer is the Extra Special Consumer service: it
// prints every event it handles. Its instances compete on the
// "extraspecialconsumer" group, so each event is handled by exactly one of
// them, and this type gets every event the Consumer type gets.
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
const group = "extraspecialconsumer"

func main() {
	service.Main(group, run)
}

func run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	return worker.Run(ctx, cfg, group, worker.PrintHandler(os.Stdout, "Extra Special Consumer", os.Getpid()), logger)
}
