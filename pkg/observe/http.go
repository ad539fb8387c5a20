package observe

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HTTPMetrics counts a service's HTTP requests by route and status and times them.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the HTTP request metrics in reg.
func NewHTTPMetrics(reg *Registry) (*HTTPMetrics, error) {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "http_requests_total",
			Help:      "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "http_request_duration_seconds",
			Help:      "Time from receiving an HTTP request to answering it, by method and route.",
			Buckets:   prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"}),
	}
	if err := registerAll(reg, m.requests, m.duration); err != nil {
		return nil, err
	}

	return m, nil
}

// Observe records one answered request. route is the route pattern, not the
// raw path, so that the number of series stays bounded; for the same reason
// a method that is not a standard HTTP method is counted as "OTHER".
func (m *HTTPMetrics) Observe(method, route string, code int, took time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method, route).Observe(took.Seconds())
}

// otherMethod is the method label of every request whose method is not a
// standard one: a client chooses the method, so taking it as-is would let
// any client create series without bound.
const otherMethod = "OTHER"

// methodLabel returns method if it is a standard HTTP method, else otherMethod.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}

	return otherMethod
}
