package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check tells whether one thing a service needs is working; nil means it is.
// It must return by the time ctx ends.
type Check func(ctx context.Context) error

// Readiness answers whether a service is fit to receive traffic: every check
// added to it passes. It logs each change between ready and not ready once.
type Readiness struct {
	timeout time.Duration
	logger  *slog.Logger

	mu     sync.Mutex
	checks []namedCheck
	ready  *bool // the last answer, nil before the first
}

type namedCheck struct {
	name  string
	check Check
}

// NewReadiness returns a readiness with no checks; each check gets at most
// timeout per question. A nil logger logs nothing.
func NewReadiness(timeout time.Duration, logger *slog.Logger) *Readiness {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	return &Readiness{timeout: timeout, logger: logger}
}

// Add adds a check under name, which appears in the answer when it fails.
func (r *Readiness) Add(name string, check Check) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks = append(r.checks, namedCheck{name: name, check: check})
}

// Check runs every check, at once, and joins the failures, each prefixed
// with its check's name.
func (r *Readiness) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	r.mu.Lock()
	checks := append([]namedCheck(nil), r.checks...)
	r.mu.Unlock()

	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			if err := c.check(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.name, err)
			}
		})
	}
	wg.Wait()

	err := errors.Join(errs...)
	r.record(err)

	return err
}

// record logs a change of the answer: Info when the service becomes ready,
// Warn with the reason when it stops being ready.
func (r *Readiness) record(err error) {
	ready := err == nil

	r.mu.Lock()
	changed := r.ready == nil || *r.ready != ready
	r.ready = &ready
	r.mu.Unlock()

	if !changed {
		return
	}
	if ready {
		r.logger.Info("ready")

		return
	}
	r.logger.Warn("not ready", "reason", strings.ReplaceAll(err.Error(), "\n", "; "))
}

// ServeHTTP answers 200 "ready" or 503 with one line per failing check.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := r.Check(req.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "not ready:\n%v\n", err)

		return
	}
	_, _ = fmt.Fprintln(w, "ready")
}

// Alive answers 200 "ok" while the process can serve HTTP at all: the
// liveness probe. It checks nothing else on purpose, so that a broker outage
// makes instances unready rather than restarted.
func Alive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintln(w, "ok")
}
