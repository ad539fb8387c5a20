package observe

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestReadinessAnswers(t *testing.T) {
	pass := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("broker away") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

	tests := []struct {
		name     string
		checks   map[string]Check
		wantCode int
		wantBody []string
	}{
		{name: "no checks means ready", wantCode: http.StatusOK, wantBody: []string{"ready"}},
		{name: "passing checks mean ready", checks: map[string]Check{"a": pass, "b": pass},
			wantCode: http.StatusOK, wantBody: []string{"ready"}},
		{name: "a failing check answers 503 naming it and its reason", checks: map[string]Check{"a": pass, "broker": fail},
			wantCode: http.StatusServiceUnavailable, wantBody: []string{"not ready", "broker: broker away"}},
		{name: "a check that hangs fails by the timeout", checks: map[string]Check{"slow": hang},
			wantCode: http.StatusServiceUnavailable, wantBody: []string{"slow: context deadline exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewReadiness(50*time.Millisecond, nil)
			for name, c := range tt.checks {
				r.Add(name, c)
			}

			rec := httptest.NewRecorder()
			start := time.Now()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathReady, nil))
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answered after %s, want about the 50ms timeout", took)
			}
			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d", rec.Code, tt.wantCode)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body %q does not contain %q", rec.Body.String(), want)
				}
			}
		})
	}
}

func TestReadinessLogsEachChangeOnce(t *testing.T) {
	var logs bytes.Buffer
	r := NewReadiness(time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	var broken bool
	r.Add("broker", func(context.Context) error {
		if broken {
			return errors.New("away")
		}

		return nil
	})

	for _, b := range []bool{false, false, true, true, true, false, false} {
		broken = b
		_ = r.Check(context.Background())
	}

	got := logs.String()
	if n := strings.Count(got, `msg=ready`); n != 2 {
		t.Errorf("logged ready %d times, want 2 (start, recovery):\n%s", n, got)
	}
	if n := strings.Count(got, `msg="not ready"`); n != 1 {
		t.Errorf(`logged "not ready" %d times, want 1:`+"\n%s", n, got)
	}
}

func TestAdminServerServesTheEndpoints(t *testing.T) {
	reg, err := NewRegistry("test", 7)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartAdmin("127.0.0.1:0", AdminMux(reg, NewReadiness(time.Second, nil)), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := srv.Shutdown(); err != nil {
			t.Error(err)
		}
	}()

	tests := []struct {
		path string
		want string
	}{
		{path: PathHealth, want: "ok"},
		{path: PathReady, want: "ready"},
		{path: PathMetrics, want: `go_goroutines{instance="7",service="test"}`},
	}
	for _, tt := range tests {
		resp, err := http.Get("http://" + srv.Addr() + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(body.String(), tt.want) {
			t.Errorf("GET %s: %d, body without %q", tt.path, resp.StatusCode, tt.want)
		}
	}
}
