package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/millrace/millrace/pkg/config"
)

func TestCorrelationID(t *testing.T) {
	tests := []struct {
		name       string
		header     string
		value      string
		wantStatus int
		wantID     string // "" means a fresh UUID
	}{
		{name: "an X-Request-ID is kept", header: "X-Request-ID", value: "req-42",
			wantStatus: http.StatusOK, wantID: "req-42"},
		{name: "an X-Correlation-ID is kept", header: "X-Correlation-ID", value: "corr-42",
			wantStatus: http.StatusOK, wantID: "corr-42"},
		{name: "no ID gets a fresh UUID", wantStatus: http.StatusOK},
		{name: "an ID with a space is refused", header: "X-Request-ID", value: "two words",
			wantStatus: http.StatusBadRequest},
		{name: "an ID over 128 characters is refused", header: "X-Correlation-ID", value: strings.Repeat("a", 129),
			wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			e := newServer(config.Default(), pub, slog.New(slog.DiscardHandler))

			req := httptest.NewRequest(http.MethodPost, "/stuff", strings.NewReader("Hello World"))
			if tt.header != "" {
				req.Header.Set(tt.header, tt.value)
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if len(pub.msgs) != 0 {
					t.Errorf("published %d events for a refused request", len(pub.msgs))
				}
				if !strings.Contains(strings.ToLower(rec.Body.String()), strings.ToLower(tt.header)) {
					t.Errorf("the 400 answer %q does not name %s", rec.Body, tt.header)
				}

				return
			}

			id := rec.Header().Get("X-Request-ID")
			if tt.wantID == "" && uuid.Validate(id) != nil || tt.wantID != "" && id != tt.wantID {
				t.Errorf("X-Request-ID in the response = %q, want %q (or a UUID)", id, tt.wantID)
			}
			if tt.header != "" && rec.Header().Get(tt.header) != id {
				t.Errorf("%s in the response = %q, want %q", tt.header, rec.Header().Get(tt.header), id)
			}
			if len(pub.msgs) != 1 {
				t.Fatalf("published %d events, want 1", len(pub.msgs))
			}
			if got := pub.msgs[0].Metadata.Get("correlation_id"); got != id {
				t.Errorf("event metadata correlation_id = %q, want %q", got, id)
			}
		})
	}
}
