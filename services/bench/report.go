package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// report is one bench run: where it ran and every phase it measured.
type report struct {
	started  time.Time
	machine  machine
	o        options
	pipeline []phaseResult
	baseA    *phaseResult
	baseB    *phaseResult
	soak     bool
}

// machine is what the figures depend on besides the code.
type machine struct {
	cores           int
	cpuModel        string
	goVersion       string
	rabbitmqVersion string
}

// Targets of the issue that the bench checks.
const (
	targetRatioA     = 0.8
	targetRatioB     = 0.5
	targetP99At1000  = 25 * time.Millisecond
	targetRSSMiB     = 40
	targetRSSEvents  = 100_000
	targetCheckRate  = 1000
	mib              = 1 << 20
	latencyPrecision = 100 * time.Microsecond
)

// write renders the report as Markdown, which reads as plain text too.
func (r report) write(w io.Writer) {
	fmt.Fprintf(w, "Run %s on %d cores (%s), %s, RabbitMQ %s.\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.machine.cores, r.machine.cpuModel,
		r.machine.goVersion, r.machine.rabbitmqVersion)
	if r.soak {
		fmt.Fprintf(w, "Publisher + %d instances of each consumer type, broker and load generator on the same machine; "+
			"soak of %s at %d ev/s, reported every %s.\n", r.o.instances, r.o.soak, r.o.soakRate, r.o.soakWindow)
	} else {
		fmt.Fprintf(w, "Publisher + %d instances of each consumer type, broker, load generator and baselines on the same machine; "+
			"%s per phase; closed loop and baseline (a) at %d concurrent requests; baseline (b) window %d.\n",
			r.o.instances, r.o.duration, r.o.concurrency, r.o.window)
	}
	if len(r.o.serviceEnv) > 0 {
		fmt.Fprintf(w, "Services run with the default configuration plus %s.\n", strings.Join(r.o.serviceEnv, " "))
	}
	if r.o.note != "" {
		fmt.Fprintf(w, "Note: %s\n", r.o.note)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "| phase | offered ev/s | sustained ev/s (both types) | accepted / failed | "+
		"send latency ms p50 / p99 / p99.9 | end-to-end consumer ms p50 / p99 / p99.9 | "+
		"end-to-end extraspecialconsumer ms p50 / p99 / p99.9 | lost | duplicated | "+
		"CPU s per 1k ev: services / broker / bench | peak RSS MiB, largest service |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, p := range r.phases() {
		offered := "max"
		if p.offered > 0 {
			offered = fmt.Sprint(p.offered)
		}
		rss := "-"
		if h := p.maxServiceHWM(); h > 0 {
			rss = fmt.Sprintf("%.1f", float64(h)/mib)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %d / %d | %s | %s | %s | %d | %d | %.3f / %.3f / %.3f | %s |\n",
			p.name, offered, p.rate, p.confirmed, p.failed, ms3(p.sendLat), ms3(p.e2e[0]), ms3(p.e2e[1]),
			p.lostTotal(), p.dupTotal(),
			p.cpuPer1k(func(f procFigures) bool { return f.service }),
			p.cpuPer1k(func(f procFigures) bool { return f.name == "rabbitmq" }),
			p.cpuPer1k(func(f procFigures) bool { return strings.HasPrefix(f.name, "bench") }),
			rss)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Send latency is the HTTP request's for the services and publish → broker confirm for the baselines; "+
		"end-to-end is from the request (or publish) to the consumer's output line (or ack).")
	r.writeFailures(w)
	r.writeProcesses(w)
	if r.soak {
		r.writeSoak(w)

		return
	}
	r.writeRatios(w)
	r.writeTargets(w)
}

// A service's RSS counts as growing over a soak when, from the end of the
// first window to the end of the last, it grows by more than both limits.
const (
	soakGrowthLimit    = 0.10
	soakGrowthLimitMiB = 4
)

// writeSoak compares every service's RSS after the first soak window, when
// its pools and buffers have warmed up, with its RSS at the end.
func (r report) writeSoak(w io.Writer) {
	if len(r.pipeline) < 2 {
		fmt.Fprintln(w, "\nThe soak needs at least two windows to tell growth; run it longer than -soak-window.")

		return
	}
	first, last := r.pipeline[0], r.pipeline[len(r.pipeline)-1]
	fmt.Fprintf(w, "\nMemory over the soak (%d events through the services):\n\n", r.eventsThroughServices())
	fmt.Fprintln(w, "| service | RSS MiB after first window | RSS MiB at end | peak RSS MiB | growth | verdict |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- |")
	for i, f := range first.procs {
		if !f.service || i >= len(last.procs) {
			continue
		}
		end := last.procs[i]
		growth := 0.0
		if f.rss > 0 {
			growth = float64(end.rss-f.rss) / float64(f.rss)
		}
		verdict := "no growth"
		if growth > soakGrowthLimit && end.rss-f.rss > soakGrowthLimitMiB*mib {
			verdict = "**grows**"
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %+.0f%% | %s |\n",
			f.name, float64(f.rss)/mib, float64(end.rss)/mib, float64(end.hwm)/mib, growth*100, verdict)
	}
}

func (r report) phases() []phaseResult {
	out := slices.Clone(r.pipeline)
	for _, b := range []*phaseResult{r.baseA, r.baseB} {
		if b != nil {
			out = append(out, *b)
		}
	}

	return out
}

func (r report) writeFailures(w io.Writer) {
	for _, p := range r.phases() {
		if p.failed == 0 && p.strays == 0 && p.unconfirmedSeen == 0 {
			continue
		}
		var reasons []string
		for _, k := range slices.Sorted(maps.Keys(p.failures)) {
			reasons = append(reasons, fmt.Sprintf("%d × %s", p.failures[k], k))
		}
		fmt.Fprintf(w, "\n%s: failed requests: %s; failed but handled anyway: %d; output lines of no event of the phase: %d.\n",
			p.name, strings.Join(reasons, ", "), p.unconfirmedSeen, p.strays)
	}
}

// writeProcesses details every process of the closed-loop phase (or the
// last phase), where the CPU goes and how much memory each holds.
func (r report) writeProcesses(w io.Writer) {
	if len(r.pipeline) == 0 {
		return
	}
	p := r.pipeline[len(r.pipeline)-1]
	fmt.Fprintf(w, "\nPer process, phase %q (%d events completed; peak RSS is since the process started, "+
		"after %d events through the services):\n\n", p.name, p.completed, r.eventsThroughServices())
	fmt.Fprintln(w, "| process | CPU s | CPU s per 1k ev | RSS MiB | peak RSS MiB |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	for _, f := range p.procs {
		fmt.Fprintf(w, "| %s | %.2f | %.3f | %.1f | %.1f |\n",
			f.name, f.cpu.Seconds(), f.cpuPer1k, float64(f.rss)/mib, float64(f.hwm)/mib)
	}
}

func (r report) eventsThroughServices() int {
	n := 0
	for _, p := range r.pipeline {
		n += p.confirmed
	}

	return n
}

// closedLoop is the pipeline's closed-loop phase, the one the ratios use.
func (r report) closedLoop() (phaseResult, bool) {
	for _, p := range r.pipeline {
		if p.offered == 0 {
			return p, true
		}
	}

	return phaseResult{}, false
}

func (r report) writeRatios(w io.Writer) {
	cl, ok := r.closedLoop()
	if !ok || r.baseA == nil || r.baseB == nil || r.baseA.rate == 0 || r.baseB.rate == 0 {
		return
	}
	fmt.Fprintf(w, "\nRatios (sustained ev/s completed by both types, same run):\n\n")
	fmt.Fprintf(w, "- services / baseline (a) same semantics: %.0f / %.0f = **%.2f**\n",
		cl.rate, r.baseA.rate, cl.rate/r.baseA.rate)
	fmt.Fprintf(w, "- services / baseline (b) physical limit: %.0f / %.0f = **%.2f**\n",
		cl.rate, r.baseB.rate, cl.rate/r.baseB.rate)
	fmt.Fprintf(w, "- services p99 end-to-end / baseline (a) p99 end-to-end, closed loop: %s / %s ms\n",
		ms(slowestP99(cl)), ms(slowestP99(*r.baseA)))
}

func slowestP99(p phaseResult) time.Duration {
	return max(p.e2e[0].p99, p.e2e[1].p99)
}

func (r report) writeTargets(w io.Writer) {
	fmt.Fprintf(w, "\nTargets:\n\n")
	cl, ok := r.closedLoop()
	if ok && r.baseA != nil && r.baseB != nil && r.baseA.rate > 0 && r.baseB.rate > 0 {
		ra, rb := cl.rate/r.baseA.rate, cl.rate/r.baseB.rate
		fmt.Fprintf(w, "- throughput ≥ %.1f × baseline (a): %.2f, %s\n", targetRatioA, ra, met(ra >= targetRatioA))
		fmt.Fprintf(w, "- throughput ≥ %.1f × baseline (b): %.2f, %s\n", targetRatioB, rb, met(rb >= targetRatioB))
	}
	for _, p := range r.pipeline {
		if p.offered == targetCheckRate {
			p99 := slowestP99(p)
			fmt.Fprintf(w, "- p99 end-to-end ≤ %s at %d ev/s: %s ms, %s\n",
				targetP99At1000, targetCheckRate, ms(p99), met(p99 <= targetP99At1000 && p99 > 0))
		}
	}
	events := r.eventsThroughServices()
	var peak int64
	for _, p := range r.pipeline {
		peak = max(peak, p.maxServiceHWM())
	}
	fmt.Fprintf(w, "- peak RSS ≤ %d MiB per service after %d events: %.1f MiB after %d events, %s\n",
		targetRSSMiB, targetRSSEvents, float64(peak)/mib, events,
		met(peak <= targetRSSMiB*mib && events >= targetRSSEvents))
	lost, dup := 0, 0
	for _, p := range r.phases() {
		lost += p.lostTotal()
		dup += p.dupTotal()
	}
	fmt.Fprintf(w, "- 0 lost, 0 duplicated: %d lost, %d duplicated, %s\n", lost, dup, met(lost == 0 && dup == 0))
}

func met(ok bool) string {
	if ok {
		return "met"
	}

	return "**not met**"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d.Round(latencyPrecision))/float64(time.Millisecond))
}

func ms3(q quantiles) string {
	if q.n == 0 {
		return "-"
	}

	return ms(q.p50) + " / " + ms(q.p99) + " / " + ms(q.p999)
}
