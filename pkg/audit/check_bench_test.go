package audit

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkCheck audits 10,000 events, each handled once by each of two
// types: the size of a long run. go test -run '^$' -bench Check ./pkg/audit
func BenchmarkCheck(b *testing.B) {
	const events = 10_000
	records := make([]Record, 0, 3*events)
	for i := range events {
		id := "e" + strconv.Itoa(i)
		at := t0.Add(time.Duration(i) * time.Millisecond)
		records = append(records,
			Record{ID: id + "p", Kind: KindPublished, EventID: id, At: at},
			Record{ID: id + "c", Kind: KindHandled, EventID: id, Group: "consumer", Instance: "1", At: at},
			Record{ID: id + "x", Kind: KindHandled, EventID: id, Group: "extraspecialconsumer", Instance: "2", At: at},
		)
	}

	for b.Loop() {
		if rep := Check(records, groups); rep.Violations != 0 || len(rep.Events) != events {
			b.Fatalf("%d events, %d violations", len(rep.Events), rep.Violations)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/events, "ns/event")
}
