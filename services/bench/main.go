// Command bench measures what the services deliver against the local
// RabbitMQ: it runs the built publisher and consumers as real processes,
// drives POST /stuff with vegeta at constant rates and then at a fixed
// concurrency, and measures in the same run two baselines written directly
// on amqp091-go with the same durability. It prints one table, with the
// ratios of the services to the baselines, and writes it as Markdown.
//
// Every event's body is unique and carries its send time; each consumer
// prints it, and the bench takes the arrival of that line as the event's
// completion, which gives end-to-end latency and an exact count of lost and
// duplicated events.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
)

// options are the bench's flags.
type options struct {
	amqpURL       string
	repo          string
	binDir        string
	out           string
	note          string
	instances     int
	rates         []int
	ramp          int
	duration      time.Duration
	concurrency   int
	window        int
	prefetch      int
	limitPrefetch int
	maxWorkers    int
	drain         time.Duration
	idle          time.Duration
	startTimeout  time.Duration
	soak          time.Duration
	soakRate      int
	soakWindow    time.Duration
	brokerPID     int
	serviceEnv    []string
}

// envFlag collects repeated -env KEY=VALUE flags.
type envFlag []string

func (e *envFlag) String() string { return strings.Join(*e, " ") }

func (e *envFlag) Set(v string) error {
	if k, _, ok := strings.Cut(v, "="); !ok || !strings.HasPrefix(k, config.EnvPrefix) {
		return fmt.Errorf("%q is not %sKEY=VALUE", v, config.EnvPrefix)
	}
	*e = append(*e, v)

	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := options{idle: 5 * time.Second}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultURL := os.Getenv("MILLRACE_AMQP_URL")
	if defaultURL == "" {
		defaultURL = "amqp://guest:guest@127.0.0.1:5672/"
	}
	fs.StringVar(&o.amqpURL, "amqp-url", defaultURL, "RabbitMQ to run against (default $MILLRACE_AMQP_URL or the local broker)")
	fs.StringVar(&o.repo, "repo", ".", "repository root: the services are built from it and run in it, with configs/default.yaml")
	fs.StringVar(&o.binDir, "bin", "", "directory with already built services (default: build them into a temporary directory)")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown file the results are written to, relative to -repo unless absolute; empty for none")
	fs.StringVar(&o.note, "note", "", "a line added to the results, e.g. what else ran on the machine")
	fs.IntVar(&o.instances, "instances", 2, "instances of each consumer type, and consumers per queue in the baselines")
	rates := fs.String("rates", "500,1000,2000", "open-loop rates in events/s, one phase each")
	fs.IntVar(&o.ramp, "ramp", 3, "after the last rate, keep doubling it at most this many times until the services fall behind")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase")
	fs.IntVar(&o.concurrency, "concurrency", 32, "requests in flight in the closed-loop phase, and publishers of baseline (a)")
	fs.IntVar(&o.window, "window", 256, "unconfirmed messages in flight in baseline (b)")
	fs.IntVar(&o.limitPrefetch, "limit-prefetch", 50, "consumer prefetch of baseline (b); baseline (a) uses the services' amqp.prefetch")
	fs.IntVar(&o.maxWorkers, "max-workers", 512, "most requests in flight in an open-loop phase")
	fs.DurationVar(&o.drain, "drain", time.Minute, "longest wait after a phase for the consumers to finish its events")
	fs.DurationVar(&o.startTimeout, "start-timeout", time.Minute, "longest wait for the services to start")
	fs.DurationVar(&o.soak, "soak", 0, "instead of the phases, run a soak this long at -soak-rate, reporting every -soak-window")
	fs.IntVar(&o.soakRate, "soak-rate", 1000, "open-loop rate of the soak, events/s")
	fs.DurationVar(&o.soakWindow, "soak-window", time.Minute, "soak reporting interval")
	withAudit := fs.Bool("audit", false,
		"run the services with the audit trail on (audit.enabled), as run-all does; off by default, as in production profiles")
	fs.Var((*envFlag)(&o.serviceEnv), "env",
		"a configuration override for the services, MILLRACE_KEY=VALUE, e.g. MILLRACE_AMQP_PREFETCH=10; repeatable")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// -env comes after, so an explicit MILLRACE_AUDIT_ENABLED still wins.
	o.serviceEnv = append([]string{"MILLRACE_AUDIT_ENABLED=" + strconv.FormatBool(*withAudit)}, o.serviceEnv...)

	var errs []error
	for r := range strings.SplitSeq(*rates, ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		n, err := strconv.Atoi(r)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("-rates: %q is not a positive whole number", r))

			continue
		}
		o.rates = append(o.rates, n)
	}
	positive := map[string]int{"-instances": o.instances, "-concurrency": o.concurrency, "-window": o.window,
		"-limit-prefetch": o.limitPrefetch, "-max-workers": o.maxWorkers, "-soak-rate": o.soakRate}
	for name, v := range positive {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: must be at least 1, got %d", name, v))
		}
	}
	if o.ramp < 0 {
		errs = append(errs, fmt.Errorf("-ramp: must not be negative, got %d", o.ramp))
	}
	for name, d := range map[string]time.Duration{"-duration": o.duration, "-drain": o.drain,
		"-start-timeout": o.startTimeout, "-soak-window": o.soakWindow} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration, got %s", name, d))
		}
	}
	if o.soak < 0 {
		errs = append(errs, fmt.Errorf("-soak: must not be negative, got %s", o.soak))
	}
	if _, err := os.Stat(filepath.Join(o.repo, "go.mod")); err != nil {
		errs = append(errs, fmt.Errorf("-repo: %s is not the repository root (no go.mod)", o.repo))
	} else if cfg, err := servicesConfig(o); err != nil {
		errs = append(errs, err)
	} else {
		o.prefetch = cfg.AMQP.Prefetch
	}

	return o, errors.Join(errs...)
}

// servicesConfig is the configuration the services will run with: the
// repository's default profile, then the MILLRACE_* environment they
// inherit, then the -env overrides.
func servicesConfig(o options) (config.Config, error) {
	environ := append(os.Environ(), o.serviceEnv...)
	cfg, _, err := config.Load(filepath.Join(o.repo, config.DefaultFile), environ)
	if err != nil {
		return cfg, fmt.Errorf("-env: %w", err)
	}

	return cfg, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	o.brokerPID = findBroker(o.amqpURL)
	m, err := describeMachine(o.amqpURL)
	if err != nil {
		return err
	}

	if o.binDir == "" {
		dir, err := os.MkdirTemp("", "millrace-bench-")
		if err != nil {
			return fmt.Errorf("creating build directory: %w", err)
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "bench: building the services")
		if err := buildServices(ctx, o.repo, dir); err != nil {
			return err
		}
		o.binDir = dir
	}
	binDir, err := filepath.Abs(o.binDir)
	if err != nil {
		return fmt.Errorf("-bin: %w", err)
	}

	rep := report{started: time.Now(), machine: m, o: o, soak: o.soak > 0}
	fmt.Fprintln(stderr, "bench: starting the publisher and consumers")
	p, err := startPipeline(o, binDir)
	if p != nil {
		defer func() { err = errors.Join(err, p.stop()) }()
	}
	if err != nil {
		return err
	}

	if o.soak > 0 {
		err = soak(ctx, o, p, &rep, stderr)
	} else {
		err = phases(ctx, o, p, &rep, stderr)
	}
	if err != nil {
		return err
	}

	rep.write(stdout)
	if o.out == "" {
		return nil
	}

	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(o.repo, out)
	}

	return writeResults(out, rep)
}

// phases runs the warm-up, the open-loop rates (ramping up until the
// services fall behind), the closed-loop phase and the two baselines.
func phases(ctx context.Context, o options, p *pipeline, rep *report, stderr io.Writer) error {
	id := 0
	next := func() int { id++; return id }
	step := func(what string, f func() (phaseResult, error)) (phaseResult, error) {
		fmt.Fprintf(stderr, "bench: %s\n", what)
		r, err := f()
		if err == nil {
			fmt.Fprintf(stderr, "bench:   %.0f ev/s completed, %d lost, %d duplicated, %d failed\n",
				r.rate, r.lostTotal(), r.dupTotal(), r.failed)
		}

		return r, err
	}

	warm := load{name: "warm-up", offered: 200, duration: min(2*time.Second, o.duration)}
	if _, err := step("warming up", func() (phaseResult, error) { return p.run(ctx, next(), warm) }); err != nil {
		return err
	}

	rates := slices.Clone(o.rates)
	for i := 0; i < len(rates); i++ {
		l := load{name: fmt.Sprintf("open loop %d ev/s", rates[i]), offered: rates[i], duration: o.duration}
		r, err := step(l.name, func() (phaseResult, error) { return p.run(ctx, next(), l) })
		if err != nil {
			return err
		}
		rep.pipeline = append(rep.pipeline, r)
		if !r.keptUp() {
			break
		}
		if i == len(rates)-1 && len(rates) < len(o.rates)+o.ramp {
			rates = append(rates, rates[i]*2)
		}
	}

	cl := load{name: fmt.Sprintf("closed loop, %d in flight", o.concurrency), concurrency: o.concurrency, duration: o.duration}
	r, err := step(cl.name, func() (phaseResult, error) { return p.run(ctx, next(), cl) })
	if err != nil {
		return err
	}
	rep.pipeline = append(rep.pipeline, r)

	a := load{name: fmt.Sprintf("baseline (a), %d publishers each confirmed", o.concurrency),
		concurrency: o.concurrency, duration: o.duration}
	ra, err := step(a.name, func() (phaseResult, error) {
		return runBaseline(ctx, o, next(), a, baseline{prefetch: o.prefetch})
	})
	if err != nil {
		return err
	}
	rep.baseA = &ra

	b := load{name: fmt.Sprintf("baseline (b), pipelined confirms window %d", o.window), duration: o.duration}
	rb, err := step(b.name, func() (phaseResult, error) {
		return runBaseline(ctx, o, next(), b, baseline{pipelined: true, prefetch: o.limitPrefetch})
	})
	if err != nil {
		return err
	}
	rep.baseB = &rb

	return nil
}

// soak runs the services at o.soakRate for o.soak, one reported phase per
// o.soakWindow; the report compares each service's memory at the end with
// its memory after the first window.
func soak(ctx context.Context, o options, p *pipeline, rep *report, stderr io.Writer) error {
	start := time.Now()
	for i := 1; time.Since(start) < o.soak; i++ {
		l := load{name: fmt.Sprintf("soak %s", (time.Duration(i) * o.soakWindow).Round(time.Second)),
			offered: o.soakRate, duration: min(o.soakWindow, o.soak-time.Since(start))}
		fmt.Fprintf(stderr, "bench: %s\n", l.name)
		r, err := p.run(ctx, i, l)
		if err != nil {
			return err
		}
		rep.pipeline = append(rep.pipeline, r)
	}

	return nil
}

func describeMachine(amqpURL string) (machine, error) {
	m := machine{cores: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown CPU"}
	conn, err := amqp091.Dial(amqpURL)
	if err != nil {
		return m, fmt.Errorf("connecting to RabbitMQ at %s: %w", config.RedactURL(amqpURL), err)
	}
	defer conn.Close()
	m.rabbitmqVersion = fmt.Sprint(conn.Properties["version"])

	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)

				break
			}
		}
	}

	return m, nil
}

// writeResults writes the report under a short header to path.
func writeResults(path string, rep report) error {
	var b bytes.Buffer
	title := "# Benchmark results"
	if rep.soak {
		title = "# Soak results"
	}
	fmt.Fprintln(&b, title)
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Written by `go tool task bench` (`go run ./services/bench`); docs/performance.md says "+
		"what each figure means and where the time goes. Absolute figures depend on the machine; the ratios, "+
		"measured in one run, are what to compare.")
	fmt.Fprintln(&b)
	rep.write(&b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing results: %w", err)
	}

	return nil
}
