package audit

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	groups = []string{"consumer", "extraspecialconsumer"}
)

// rec builds records tersely: kind, event, group, instance, attempt, redelivered.
type rec struct {
	kind        Kind
	event       string
	group       string
	instance    string
	attempt     int
	redelivered bool
}

func build(recs []rec) []Record {
	out := make([]Record, 0, len(recs))
	for i, r := range recs {
		out = append(out, Record{
			ID: "r" + strconv.Itoa(i), Kind: r.kind, EventID: r.event, Group: r.group, Instance: r.instance,
			Attempt: r.attempt, Redelivered: r.redelivered, At: t0.Add(time.Duration(i) * time.Millisecond),
		})
	}

	return out
}

func TestCheckFindsEveryKindOfViolation(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name           string
		records        []rec
		want           []Status // per group, for event "e1"
		wantRedeliver  []bool
		wantViolations int
	}{
		{
			name: "each type handled the event exactly once",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11", attempt: 1},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21", attempt: 1},
			},
			want:          []Status{StatusOK, StatusOK},
			wantRedeliver: []bool{false, false},
		},
		{
			name: "handled records may arrive before the published one",
			records: []rec{
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11"},
				{kind: KindPublished, event: "e1"},
			},
			want:          []Status{StatusOK, StatusOK},
			wantRedeliver: []bool{false, false},
		},
		{
			name: "one type never handled it",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11"},
			},
			want:           []Status{StatusOK, StatusMissing},
			wantRedeliver:  []bool{false, false},
			wantViolations: 1,
		},
		{
			name: "two instances of one type both handled it",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11", attempt: 1},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "12", attempt: 1},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21", attempt: 1},
			},
			want:           []Status{StatusDuplicate, StatusOK},
			wantRedeliver:  []bool{false, false},
			wantViolations: 1,
		},
		{
			name: "a redelivery that was handled once is not a violation",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "12", redelivered: true},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21", attempt: 2},
			},
			want:          []Status{StatusOK, StatusOK},
			wantRedeliver: []bool{true, true},
		},
		{
			name: "a redelivery of an event already handled is a duplicate",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11", attempt: 1},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "11", attempt: 2, redelivered: true},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21", attempt: 1},
			},
			want:           []Status{StatusDuplicate, StatusOK},
			wantRedeliver:  []bool{true, false},
			wantViolations: 1,
		},
		{
			name: "a parked event is a violation of its type",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindParked, event: "e1", group: "consumer", instance: "11", attempt: 5},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
			},
			want:           []Status{StatusParked, StatusOK},
			wantRedeliver:  []bool{false, false},
			wantViolations: 1,
		},
		{
			name: "a parked event replayed and then handled once is resolved",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindParked, event: "e1", group: "consumer", instance: "11", attempt: 5},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "12", attempt: 1},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
			},
			want:          []Status{StatusReplayed, StatusOK},
			wantRedeliver: []bool{false, false},
		},
		{
			name: "a parked event replayed and then handled twice is a duplicate",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindParked, event: "e1", group: "consumer", instance: "11", attempt: 5},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "12", attempt: 1},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "13", attempt: 1},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
			},
			want:           []Status{StatusDuplicate, StatusOK},
			wantRedeliver:  []bool{false, false},
			wantViolations: 1,
		},
		{
			name: "records of other events and unknown types do not count",
			records: []rec{
				{kind: KindPublished, event: "e1"},
				{kind: KindPublished, event: "e2"},
				{kind: KindHandled, event: "e2", group: "consumer", instance: "11"},
				{kind: KindHandled, event: "e1", group: "consumer", instance: "12"},
				{kind: KindHandled, event: "e1", group: "auditor", instance: "99"},
				{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
			},
			want:           []Status{StatusOK, StatusOK},
			wantRedeliver:  []bool{false, false},
			wantViolations: 1, // e2 is missing for extraspecialconsumer
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := Check(build(tt.records), groups)

			var e1 *EventResult
			for i := range rep.Events {
				if rep.Events[i].EventID == "e1" {
					e1 = &rep.Events[i]
				}
			}
			if e1 == nil {
				t.Fatalf("event e1 is not in the report: %+v", rep)
			}
			for i, g := range e1.Groups {
				if g.Group != groups[i] {
					t.Errorf("group %d = %s, want %s", i, g.Group, groups[i])
				}
				if g.Status != tt.want[i] {
					t.Errorf("%s: status %s, want %s (%+v)", g.Group, g.Status, tt.want[i], g)
				}
				if g.Redelivered != tt.wantRedeliver[i] {
					t.Errorf("%s: redelivered %v, want %v", g.Group, g.Redelivered, tt.wantRedeliver[i])
				}
			}
			if rep.Violations != tt.wantViolations {
				t.Errorf("violations = %d, want %d", rep.Violations, tt.wantViolations)
			}
		})
	}
}

func TestARecordSeenTwiceCountsOnce(t *testing.T) {
	t.Parallel()
	recs := build([]rec{
		{kind: KindPublished, event: "e1"},
		{kind: KindHandled, event: "e1", group: "consumer", instance: "11"},
		{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
	})
	recs = append(recs, recs[1], recs[0])

	rep := Check(recs, groups)

	if len(rep.Events) != 1 || rep.Violations != 0 {
		t.Errorf("got %d events and %d violations, want 1 and 0: %+v", len(rep.Events), rep.Violations, rep)
	}
}

func TestEventsHandledButNeverSeenPublishedAreSetAside(t *testing.T) {
	t.Parallel()
	rep := Check(build([]rec{
		{kind: KindHandled, event: "before-the-window", group: "consumer", instance: "11"},
	}), groups)

	if len(rep.Events) != 0 || rep.Violations != 0 {
		t.Errorf("got %d events and %d violations, want none", len(rep.Events), rep.Violations)
	}
	if len(rep.Unpublished) != 1 || rep.Unpublished[0] != "before-the-window" {
		t.Errorf("unpublished = %v, want [before-the-window]", rep.Unpublished)
	}
}

func TestCompleteWaitsForEveryTypeOfEveryEvent(t *testing.T) {
	t.Parallel()
	recs := build([]rec{
		{kind: KindPublished, event: "e1"},
		{kind: KindHandled, event: "e1", group: "consumer", instance: "11"},
	})
	if Check(recs, groups).Complete() {
		t.Fatal("complete with extraspecialconsumer still missing")
	}

	recs = append(recs, Record{ID: "late", Kind: KindHandled, EventID: "e1", Group: "extraspecialconsumer", At: t0})
	if !Check(recs, groups).Complete() {
		t.Fatal("not complete once every type handled the event")
	}
}

func TestTheTextReportNamesEachFailureAndSumsUp(t *testing.T) {
	t.Parallel()
	recs := build([]rec{
		{kind: KindPublished, event: "good"},
		{kind: KindHandled, event: "good", group: "consumer", instance: "11"},
		{kind: KindHandled, event: "good", group: "extraspecialconsumer", instance: "21"},
		{kind: KindPublished, event: "bad"},
		{kind: KindHandled, event: "bad", group: "consumer", instance: "11"},
		{kind: KindHandled, event: "bad", group: "consumer", instance: "12", redelivered: true},
	})
	var out bytes.Buffer

	if err := Check(recs, groups).WriteText(&out, false); err != nil {
		t.Fatal(err)
	}

	text := out.String()
	for _, want := range []string{
		"FAIL event bad",
		"consumer duplicate by 11,12 (redelivered);",
		"extraspecialconsumer missing;",
		"audit: 2 events x 2 types: 2 exactly once, 1 missing, 1 duplicated, 0 parked, 0 replayed, 1 redelivered; 2 violations",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "event good") {
		t.Errorf("report lists an event that is OK:\n%s", text)
	}
}

func TestAReplayedEventNamesWhoParkedItAndWhoHandledIt(t *testing.T) {
	t.Parallel()
	recs := build([]rec{
		{kind: KindPublished, event: "e1"},
		{kind: KindParked, event: "e1", group: "consumer", instance: "11", attempt: 4},
		{kind: KindHandled, event: "e1", group: "consumer", instance: "12", attempt: 1},
		{kind: KindHandled, event: "e1", group: "extraspecialconsumer", instance: "21"},
	})

	rep := Check(recs, groups)

	got := rep.Events[0].Groups[0]
	if !slices.Equal(got.ParkedBy, []string{"11"}) || !slices.Equal(got.Instances, []string{"12"}) {
		t.Errorf("parked by %v and handled by %v, want [11] and [12]", got.ParkedBy, got.Instances)
	}
	if rep.Replayed != 1 || rep.Parked != 0 || rep.Violations != 0 || !rep.Events[0].OK() {
		t.Errorf("replayed %d, parked %d, violations %d, ok %v; want 1, 0, 0, true",
			rep.Replayed, rep.Parked, rep.Violations, rep.Events[0].OK())
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out, true); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"OK   event e1",
		"consumer replayed by 12 (parked by 11);",
		"0 parked, 1 replayed, 0 redelivered; 0 violations",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
}

func TestAParkedEventNotYetReplayedNamesWhoParkedIt(t *testing.T) {
	t.Parallel()
	rep := Check(build([]rec{
		{kind: KindPublished, event: "e1"},
		{kind: KindParked, event: "e1", group: "consumer", instance: "11", attempt: 4},
	}), groups)

	got := rep.Events[0].Groups[0]
	if got.Status != StatusParked || !slices.Equal(got.ParkedBy, []string{"11"}) || len(got.Instances) != 0 {
		t.Errorf("got %+v, want parked by [11] and handled by nobody", got)
	}
}
