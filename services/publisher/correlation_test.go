package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/observe"
)

func TestProbesIgnoreCorrelationHeaders(t *testing.T) {
	bad := map[string]string{
		"X-Request-ID":     strings.Repeat("a", 500),
		"X-Correlation-ID": "two words",
	}
	for _, path := range []string{observe.PathHealth, observe.PathReady, observe.PathMetrics} {
		for header, value := range bad {
			t.Run(path+" answers 200 with an invalid "+header, func(t *testing.T) {
				t.Parallel()
				h, _ := newObservedServer(t)
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set(header, value)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)

				if rec.Code != http.StatusOK {
					t.Errorf("status %d (%s), want 200", rec.Code, rec.Body)
				}
			})
		}
	}
}

func TestBothCorrelationHeaders(t *testing.T) {
	tests := []struct {
		name          string
		requestID     string
		correlationID string
		wantStatus    int
		wantNamed     string // header the 400 answer names
	}{
		{name: "two valid IDs: X-Request-ID wins and both answer it",
			requestID: "req-1", correlationID: "corr-1", wantStatus: http.StatusOK},
		{name: "a valid X-Request-ID with an invalid X-Correlation-ID is refused",
			requestID: "req-1", correlationID: "two words", wantStatus: http.StatusBadRequest, wantNamed: "X-Correlation-ID"},
		{name: "an invalid X-Request-ID with a valid X-Correlation-ID is refused",
			requestID: strings.Repeat("a", 129), correlationID: "corr-1", wantStatus: http.StatusBadRequest, wantNamed: "X-Request-ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			e := newServer(config.Default(), pub, slog.New(slog.DiscardHandler))
			req := httptest.NewRequest(http.MethodPost, "/stuff", strings.NewReader("Hello World"))
			req.Header.Set("X-Request-ID", tt.requestID)
			req.Header.Set("X-Correlation-ID", tt.correlationID)
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if len(pub.msgs) != 0 {
					t.Errorf("published %d events for a refused request", len(pub.msgs))
				}
				if !strings.Contains(strings.ToLower(rec.Body.String()), strings.ToLower(tt.wantNamed)) {
					t.Errorf("the 400 answer %q does not name %s", rec.Body, tt.wantNamed)
				}

				return
			}

			for _, header := range []string{"X-Request-ID", "X-Correlation-ID"} {
				if got := rec.Header().Get(header); got != tt.requestID {
					t.Errorf("%s in the response = %q, want %q", header, got, tt.requestID)
				}
			}
			if len(pub.msgs) != 1 {
				t.Fatalf("published %d events, want 1", len(pub.msgs))
			}
			if got := pub.msgs[0].Metadata.Get("correlation_id"); got != tt.requestID {
				t.Errorf("event metadata correlation_id = %q, want %q", got, tt.requestID)
			}
		})
	}
}
