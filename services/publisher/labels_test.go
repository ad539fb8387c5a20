package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/observe"
)

// newObservedServer is the publisher's HTTP server with its operator
// endpoints, publishing to a publisher that only records.
func newObservedServer(t *testing.T) (http.Handler, *ops) {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	o, pub, err := newOps(cfg, &recordingPublisher{}, logger)
	if err != nil {
		t.Fatalf("newOps: %v", err)
	}
	e := newServer(cfg, pub, logger)
	o.mount(e)

	return e, o
}

// httpSeries returns the label sets of the publisher's request counter.
func httpSeries(t *testing.T, o *ops) []string {
	t.Helper()
	families, err := o.reg.Gatherer().Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	var series []string
	for _, f := range families {
		if f.GetName() != observe.Namespace+"_http_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			series = append(series, labels["method"]+" "+labels["route"]+" "+labels["code"])
		}
	}

	return series
}

func TestHTTPMetricLabelsStayBoundedWhateverTheClientSends(t *testing.T) {
	tests := []struct {
		name       string
		method     func(i int) string
		path       func(i int) string
		wantSeries []string
	}{
		{
			name:       "made-up methods on /stuff count as one OTHER series",
			method:     func(i int) string { return fmt.Sprintf("M%d", i) },
			path:       func(int) string { return "/stuff" },
			wantSeries: []string{"OTHER /stuff 405"},
		},
		{
			name:       "unknown paths count as one unmatched series",
			method:     func(int) string { return http.MethodGet },
			path:       func(i int) string { return fmt.Sprintf("/nothing-%d/x", i) },
			wantSeries: []string{"GET unmatched 404"},
		},
		{
			name:       "made-up methods on unknown paths count as one series",
			method:     func(i int) string { return fmt.Sprintf("X%d", i) },
			path:       func(i int) string { return fmt.Sprintf("/stuff/%d", i) },
			wantSeries: []string{"OTHER unmatched 404"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, o := newObservedServer(t)
			for i := range 20 {
				req := httptest.NewRequest(tt.method(i), tt.path(i), strings.NewReader("x"))
				h.ServeHTTP(httptest.NewRecorder(), req)
			}

			got := httpSeries(t, o)
			if strings.Join(got, ",") != strings.Join(tt.wantSeries, ",") {
				t.Errorf("series = %q, want %q", got, tt.wantSeries)
			}
		})
	}
}

func TestOtherMethodsOnStuff(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		wantStatus int
	}{
		{name: "PUT is refused with 405 and the allowed methods", method: http.MethodPut, wantStatus: http.StatusMethodNotAllowed},
		{name: "a made-up method is refused with 405 and the allowed methods", method: "M123", wantStatus: http.StatusMethodNotAllowed},
		{name: "OPTIONS answers 204 with the allowed methods", method: http.MethodOptions, wantStatus: http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newObservedServer(t)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/stuff", nil))

			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if allow := rec.Header().Get("Allow"); !strings.Contains(allow, http.MethodPost) {
				t.Errorf("Allow = %q, want it to list POST", allow)
			}
		})
	}
}
