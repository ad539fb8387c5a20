package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
	"github.com/millrace/millrace/pkg/observe"
)

// readyTimeout bounds one readiness question.
const readyTimeout = 2 * time.Second

var (
	errStarting      = errors.New("starting")
	errRouterStopped = errors.New("router is not running")
)

// observer is what an operator sees of a consumer instance: its metrics, its
// readiness and the admin HTTP server that serves them.
type observer struct {
	cfg    config.Config
	group  string
	logger *slog.Logger

	reg    *observe.Registry
	events *observe.EventMetrics
	ready  *observe.Readiness
	admin  *observe.AdminServer
	router atomic.Pointer[message.Router]
}

// startObserver registers the metrics and starts the admin server, which
// answers "not ready" until watch has a running router.
func startObserver(cfg config.Config, group string, logger *slog.Logger) (*observer, error) {
	o := &observer{cfg: cfg, group: group, logger: logger}

	var err error
	if o.reg, err = observe.NewRegistry(group, logging.Instance()); err != nil {
		return nil, err
	}
	if o.events, err = observe.NewEventMetrics(o.reg); err != nil {
		return nil, err
	}

	o.ready = observe.NewReadiness(readyTimeout, logger)
	o.ready.Add("router", o.routerRunning)

	mux := observe.AdminMux(o.reg, o.ready)
	if o.admin, err = observe.StartAdmin(cfg.Consumer.AdminListen, mux, logger); err != nil {
		return nil, err
	}

	return o, nil
}

// middleware is the router's outermost middleware: event metrics and logs.
func (o *observer) middleware() message.HandlerMiddleware {
	return o.events.Middleware(o.group, o.cfg.Consumer.Retry.MaxRetries, o.logger)
}

// watch adds Watermill's own router metrics (handler execution time,
// messages received) and makes readiness follow router and subscriber.
// Call it before adding handlers, so that their subscribers are decorated.
func (o *observer) watch(router *message.Router, sub message.Subscriber) {
	builder := metrics.NewPrometheusMetricsBuilder(o.reg.Registerer, observe.Namespace, "")
	builder.HandlerBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)
	builder.AddPrometheusRouterMetrics(router)

	if check, ok := broker.ReadyCheck(o.cfg, o.group, sub); ok {
		o.ready.Add("broker", check)
	} else {
		o.logger.Info("backend has no broker readiness check; readiness follows the router only")
	}
	o.router.Store(router)
}

func (o *observer) routerRunning(context.Context) error {
	r := o.router.Load()
	switch {
	case r == nil:
		return errStarting
	case !r.IsRunning() || r.IsClosed():
		return errRouterStopped
	}

	return nil
}

// stop shuts the admin server down; errors are logged here, as the service
// is stopping anyway.
func (o *observer) stop() {
	if err := o.admin.Shutdown(); err != nil {
		o.logger.Error("stopping admin HTTP", "error", err)
	}
}
