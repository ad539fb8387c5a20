package audit

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Status is what the audit found for one event and one consumer type.
type Status string

// The statuses; every one but StatusOK and StatusReplayed is a violation.
const (
	// StatusOK: handled exactly once and never parked.
	StatusOK Status = "ok"
	// StatusReplayed: parked, then replayed from the poison queue and handled
	// exactly once. The event was delivered late, but it was delivered.
	StatusReplayed Status = "replayed"
	// StatusMissing: no handled record (yet).
	StatusMissing Status = "missing"
	// StatusDuplicate: handled more than once.
	StatusDuplicate Status = "duplicate"
	// StatusParked: set aside in the poison queue and not handled since.
	StatusParked Status = "parked"
)

// GroupResult is how one consumer type dealt with one event.
type GroupResult struct {
	Group  string
	Status Status
	// Handled counts the distinct handled records.
	Handled int
	// Instances lists the instance of each handled record, in time order.
	Instances []string
	// ParkedBy lists the instance of each parked record, in time order.
	ParkedBy []string
	// Redelivered is true when a handled record was for a redelivery: the
	// broker gave the event again, after a failure or a crash, before it was
	// handled. On its own it is not a violation.
	Redelivered bool
}

// EventResult is the audit of one published event.
type EventResult struct {
	EventID     string
	Body        string
	PublishedAt time.Time
	Groups      []GroupResult
}

// OK tells whether every consumer type handled the event exactly once.
func (e EventResult) OK() bool {
	for _, g := range e.Groups {
		if g.Status.Violation() {
			return false
		}
	}

	return true
}

// Violation tells whether s breaks the exactly-once promise.
func (s Status) Violation() bool {
	return s != StatusOK && s != StatusReplayed
}

// Report is the audit of a set of records.
type Report struct {
	// Groups are the consumer types every event must reach.
	Groups []string
	// Events are the events whose publication was recorded, oldest first.
	Events []EventResult
	// Unpublished lists events handled with no published record among the
	// records: published before the audit started listening, or whose
	// published record was lost. They are not audited.
	Unpublished []string
	// Violations counts the (event, type) pairs that are not StatusOK or
	// StatusReplayed.
	Violations int
	// Missing, Duplicates, Parked, Replayed and Redelivered count (event,
	// type) pairs.
	Missing, Duplicates, Parked, Replayed, Redelivered int
}

// Check audits records against groups: every published event must be handled
// exactly once by each group. Records seen twice (same ID) count once.
func Check(records []Record, groups []string) Report {
	seen := map[string]bool{}
	published := map[string]Record{}
	var order []string
	byEvent := map[string][]Record{}
	for _, r := range records {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		if r.Kind == KindPublished {
			if _, ok := published[r.EventID]; !ok {
				published[r.EventID] = r
				order = append(order, r.EventID)
			}

			continue
		}
		byEvent[r.EventID] = append(byEvent[r.EventID], r)
	}

	rep := Report{Groups: groups}
	for id := range byEvent {
		if _, ok := published[id]; !ok {
			rep.Unpublished = append(rep.Unpublished, id)
		}
	}
	slices.Sort(rep.Unpublished)

	slices.SortStableFunc(order, func(a, b string) int { return published[a].At.Compare(published[b].At) })
	for _, id := range order {
		ev := EventResult{EventID: id, Body: published[id].Body, PublishedAt: published[id].At}
		for _, g := range groups {
			res := checkGroup(byEvent[id], g)
			rep.count(res)
			ev.Groups = append(ev.Groups, res)
		}
		rep.Events = append(rep.Events, ev)
	}

	return rep
}

func checkGroup(records []Record, group string) GroupResult {
	res := GroupResult{Group: group, Status: StatusOK}
	var handled, parked []Record
	for _, r := range records {
		switch {
		case r.Group != group:
		case r.Kind == KindParked:
			parked = append(parked, r)
		case r.Kind == KindHandled:
			handled = append(handled, r)
		}
	}
	byTime := func(a, b Record) int { return a.At.Compare(b.At) }
	slices.SortStableFunc(handled, byTime)
	slices.SortStableFunc(parked, byTime)
	for _, r := range handled {
		res.Instances = append(res.Instances, r.Instance)
		res.Redelivered = res.Redelivered || r.IsRedelivery()
	}
	for _, r := range parked {
		res.ParkedBy = append(res.ParkedBy, r.Instance)
	}
	res.Handled = len(handled)

	// A parked event replayed from the poison queue and then handled once is
	// resolved; parked and never handled, it is still a violation.
	switch {
	case len(parked) > 0 && res.Handled == 0:
		res.Status = StatusParked
	case len(parked) > 0 && res.Handled == 1:
		res.Status = StatusReplayed
	case res.Handled == 0:
		res.Status = StatusMissing
	case res.Handled > 1:
		res.Status = StatusDuplicate
	}

	return res
}

func (r *Report) count(g GroupResult) {
	switch g.Status {
	case StatusOK:
	case StatusMissing:
		r.Missing++
	case StatusDuplicate:
		r.Duplicates++
	case StatusParked:
		r.Parked++
	case StatusReplayed:
		r.Replayed++
	}
	if g.Status.Violation() {
		r.Violations++
	}
	if g.Redelivered {
		r.Redelivered++
	}
}

// Complete tells whether every event has been dealt with by every type
// (handled or parked): nothing is missing any more.
func (r Report) Complete() bool {
	return r.Missing == 0
}

// WriteText writes one line per event that is not OK (every event when all
// is true), then a summary line.
func (r Report) WriteText(w io.Writer, all bool) error {
	var b strings.Builder
	for _, ev := range r.Events {
		if ev.OK() && !all {
			continue
		}
		mark := "OK  "
		if !ev.OK() {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s event %s %q:", mark, ev.EventID, ev.Body)
		for _, g := range ev.Groups {
			fmt.Fprintf(&b, " %s %s", g.Group, g.Status)
			if len(g.Instances) > 0 {
				fmt.Fprintf(&b, " by %s", strings.Join(g.Instances, ","))
			}
			if len(g.ParkedBy) > 0 {
				fmt.Fprintf(&b, " (parked by %s)", strings.Join(g.ParkedBy, ","))
			}
			if g.Redelivered {
				b.WriteString(" (redelivered)")
			}
			b.WriteString(";")
		}
		b.WriteString("\n")
	}
	if n := len(r.Unpublished); n > 0 {
		fmt.Fprintf(&b, "note: %d handled events had no published record in this window and were not audited\n", n)
	}
	pairs := len(r.Events) * len(r.Groups)
	fmt.Fprintf(&b, "audit: %d events x %d types: %d exactly once, %d missing, %d duplicated, %d parked, "+
		"%d replayed, %d redelivered; %d violations\n",
		len(r.Events), len(r.Groups), pairs-r.Violations, r.Missing, r.Duplicates, r.Parked,
		r.Replayed, r.Redelivered, r.Violations)
	_, err := io.WriteString(w, b.String())

	return err
}
