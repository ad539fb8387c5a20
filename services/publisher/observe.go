package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	wmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
	"github.com/millrace/millrace/pkg/observe"
)

// Correlation headers: a request's ID comes in either (X-Request-ID wins),
// and goes back in X-Request-ID and in X-Correlation-ID if one came in.
const (
	headerRequestID     = echo.HeaderXRequestID
	headerCorrelationID = echo.HeaderXCorrelationID
	maxCorrelationID    = 128
)

// Keys of the Echo context values the request logger reads.
const (
	ctxCorrelationID = "correlation_id"
	ctxEventID       = "event_id"
)

// readyTimeout bounds one readiness question.
const readyTimeout = 2 * time.Second

var errShuttingDown = errors.New("shutting down")

// correlate gives every request a correlation ID: the client's X-Request-ID,
// else its X-Correlation-ID, else a fresh UUID. It answers it in
// X-Request-ID, and also in X-Correlation-ID when the request had one, and
// keeps it for the event and the request's log line. Each of the two
// headers that is sent must be 1 to 128 visible ASCII characters, even the
// one that loses to X-Request-ID, or the request is refused with 400 naming
// it. Probes and scrapes skip all this: no request header may fail them.
func correlate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if isProbe(c) {
			return next(c)
		}

		req, res := c.Request(), c.Response()
		var id string
		for _, header := range []string{headerRequestID, headerCorrelationID} {
			v := req.Header.Get(header)
			if v == "" {
				continue
			}
			if !validCorrelationID(v) {
				return echo.NewHTTPError(http.StatusBadRequest,
					header+" must be 1 to 128 visible ASCII characters (no spaces)")
			}
			if id == "" {
				id = v
			}
		}
		if id == "" {
			id = uuid.NewString()
		}

		c.Set(ctxCorrelationID, id)
		res.Header().Set(headerRequestID, id)
		if req.Header.Get(headerCorrelationID) != "" {
			res.Header().Set(headerCorrelationID, id)
		}

		return next(c)
	}
}

func validCorrelationID(id string) bool {
	if len(id) > maxCorrelationID {
		return false
	}
	for i := range len(id) {
		if id[i] < '!' || id[i] > '~' {
			return false
		}
	}

	return true
}

// tagEvent puts the request's correlation ID in msg's metadata and notes
// msg's ID for the request's log line.
func tagEvent(c echo.Context, msg *message.Message) {
	if id, ok := c.Get(ctxCorrelationID).(string); ok {
		wmiddleware.SetCorrelationID(id, msg)
	}
	c.Set(ctxEventID, msg.UUID)
}

// requestAttrs are the identifiers the request's log line carries.
func requestAttrs(c echo.Context) []any {
	var attrs []any
	for _, key := range []string{ctxCorrelationID, ctxEventID} {
		if v, ok := c.Get(key).(string); ok {
			attrs = append(attrs, key, v)
		}
	}

	return attrs
}

// isProbe tells the request logger to skip scrapes and probes: they come
// every few seconds, and readiness logs its own changes.
func isProbe(c echo.Context) bool {
	switch c.Request().URL.Path {
	case observe.PathMetrics, observe.PathHealth, observe.PathReady:
		return true
	}

	return false
}

// ops is what an operator sees of the publisher: metrics and readiness,
// served next to the API.
type ops struct {
	reg      *observe.Registry
	http     *observe.HTTPMetrics
	ready    *observe.Readiness
	stopping atomic.Bool
}

// newOps registers the publisher's metrics and readiness checks, and wraps
// pub so that every publish is timed (Watermill's publish metrics).
func newOps(cfg config.Config, pub message.Publisher, logger *slog.Logger) (*ops, message.Publisher, error) {
	o := &ops{ready: observe.NewReadiness(readyTimeout, logger)}

	var err error
	if o.reg, err = observe.NewRegistry("publisher", logging.Instance()); err != nil {
		return nil, nil, err
	}
	if o.http, err = observe.NewHTTPMetrics(o.reg); err != nil {
		return nil, nil, err
	}

	builder := metrics.NewPrometheusMetricsBuilder(o.reg.Registerer, observe.Namespace, "")
	builder.PublishBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)
	timed, err := builder.DecoratePublisher(pub)
	if err != nil {
		return nil, nil, err
	}

	o.ready.Add("http", func(context.Context) error {
		if o.stopping.Load() {
			return errShuttingDown
		}

		return nil
	})
	if check, ok := broker.ReadyCheck(cfg, "", pub); ok {
		o.ready.Add("broker", check)
	} else {
		logger.Info("backend has no broker readiness check; readiness follows the HTTP server only")
	}

	return o, timed, nil
}

// mount adds the HTTP metrics to every route and serves the operator endpoints.
func (o *ops) mount(e *echo.Echo) {
	e.Use(o.measure)
	e.GET(observe.PathMetrics, echo.WrapHandler(o.reg.Handler()))
	e.GET(observe.PathHealth, echo.WrapHandler(http.HandlerFunc(observe.Alive)))
	e.GET(observe.PathReady, echo.WrapHandler(o.ready))
}

// measure counts and times every request by route pattern and status.
func (o *ops) measure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)

		code := c.Response().Status
		if err != nil {
			code = http.StatusInternalServerError
			var he *echo.HTTPError
			if errors.As(err, &he) {
				code = he.Code
			}
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		o.http.Observe(c.Request().Method, route, code, time.Since(start))

		return err
	}
}
