// Package observe is what lets an operator see a running millrace service:
// its Prometheus metrics, its liveness and readiness, and the small admin
// HTTP server that serves them on instances without an HTTP API of their own.
package observe

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric millrace defines.
const Namespace = "millrace"

// Registry holds one process's metrics. Every metric registered through it
// carries the labels service and instance, as every log line does.
//
// Warning: Prometheus sets its own instance label (the scrape target) and
// renames ours to exported_instance unless the scrape job sets honor_labels.
type Registry struct {
	gatherer *prometheus.Registry
	// Registerer registers a collector with the service and instance labels added.
	Registerer prometheus.Registerer
}

// NewRegistry returns a registry for one instance of service, with the Go
// runtime and process collectors already in it.
func NewRegistry(service string, instance int) (*Registry, error) {
	reg := prometheus.NewRegistry()
	r := &Registry{
		gatherer: reg,
		Registerer: prometheus.WrapRegistererWith(prometheus.Labels{
			"service":  service,
			"instance": strconv.Itoa(instance),
		}, reg),
	}
	err := errors.Join(
		r.Registerer.Register(collectors.NewGoCollector()),
		r.Registerer.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return nil, fmt.Errorf("registering runtime metrics: %w", err)
	}

	return r, nil
}

// Gatherer is what a scrape reads.
func (r *Registry) Gatherer() prometheus.Gatherer {
	return r.gatherer
}

// Handler serves the registry in the Prometheus exposition format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{Registry: r.Registerer})
}

func registerAll(reg *Registry, cs ...prometheus.Collector) error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, reg.Registerer.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	return nil
}
