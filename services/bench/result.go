package main

import (
	"time"
)

// watchedProc is a process whose CPU and memory a phase reports; service
// marks the millrace services, whose peak RSS has a target.
type watchedProc struct {
	name    string
	pid     int
	service bool
}

// sample reads the usage of every watched process; a process that cannot be
// read (it exited) gets a zero usage, which the report shows as missing.
func sample(w []watchedProc) []usage {
	out := make([]usage, len(w))
	for i, p := range w {
		u, err := readUsage(p.pid)
		if err == nil {
			out[i] = u
		}
	}

	return out
}

// procFigures is one process's share of a phase.
type procFigures struct {
	name    string
	service bool
	cpu     time.Duration
	// cpuPer1k is CPU seconds per 1,000 completed events.
	cpuPer1k float64
	rss, hwm int64
}

// phaseResult is everything one phase measured.
type phaseResult struct {
	load
	kind string
	flow
	procs []procFigures
}

func newPhaseResult(l load, f flow, w []watchedProc, before, after []usage) phaseResult {
	r := phaseResult{load: l, flow: f}
	for i, p := range w {
		pf := procFigures{name: p.name, service: p.service, rss: after[i].rss, hwm: after[i].hwm}
		if after[i].cpu >= before[i].cpu {
			pf.cpu = after[i].cpu - before[i].cpu
		}
		if f.completed > 0 {
			pf.cpuPer1k = pf.cpu.Seconds() * 1000 / float64(f.completed)
		}
		r.procs = append(r.procs, pf)
	}

	return r
}

// lostTotal and dupTotal add up every type.
func (r phaseResult) lostTotal() int { return r.lost[0] + r.lost[1] }
func (r phaseResult) dupTotal() int  { return r.dup[0] + r.dup[1] }

// serviceCPUPer1k is the services' CPU seconds per 1,000 events, all
// instances together; brokerCPUPer1k and benchCPUPer1k the same for the
// broker and the bench process.
func (r phaseResult) cpuPer1k(match func(procFigures) bool) float64 {
	var s float64
	for _, p := range r.procs {
		if match(p) {
			s += p.cpuPer1k
		}
	}

	return s
}

// maxServiceHWM is the largest peak RSS of any service process.
func (r phaseResult) maxServiceHWM() int64 {
	var m int64
	for _, p := range r.procs {
		if p.service {
			m = max(m, p.hwm)
		}
	}

	return m
}

// keptUp says whether an open-loop phase completed what it offered, without
// loss or failed requests: if not, the pipeline is saturated at that rate.
func (r phaseResult) keptUp() bool {
	return r.rate >= 0.95*float64(r.offered) && r.failed == 0 && r.lostTotal() == 0
}
