package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

func testConfig() config.Config {
	cfg := config.Default()
	cfg.Topic = "stuff"
	cfg.Publisher.MaxBodyBytes = 64
	cfg.Publisher.PublishTimeout = 200 * time.Millisecond

	return cfg
}

func TestPostStuffPublishesTheBodyUnchanged(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		body        string
		contentType string
	}{
		{name: "plain text as curl -d sends it", body: "Hello World", contentType: "application/x-www-form-urlencoded"},
		{name: "form-encoded characters are not decoded", body: "a=1&b=hello+world%21", contentType: "application/x-www-form-urlencoded"},
		{name: "no content type at all", body: "Hello Jack"},
		{name: "unicode of every width", body: "héllo wörld — 日本語 🎉", contentType: "text/plain; charset=utf-8"},
		{name: "newlines and CRLF", body: "line one\nline two\r\nline three\n", contentType: "text/plain"},
		{name: "NUL bytes and binary", body: "a\x00b\x00\xff\xfe", contentType: "application/octet-stream"},
		{name: "leading and trailing spaces", body: "  padded  ", contentType: "text/plain"},
		{name: "a body of exactly the limit", body: strings.Repeat("x", 64), contentType: "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1}, nil)
			t.Cleanup(func() { _ = pubSub.Close() })
			received, err := pubSub.Subscribe(context.Background(), "stuff")
			if err != nil {
				t.Fatal(err)
			}

			rec := serve(t, newServer(testConfig(), pubSub, slog.New(slog.DiscardHandler)),
				http.MethodPost, "/stuff", tt.body, tt.contentType)

			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d (%q), want 200", rec.Code, rec.Body.String())
			}
			if got, want := rec.Body.String(), "received: "+tt.body; got != want {
				t.Errorf("response body = %q, want %q", got, want)
			}
			if got := rec.Header().Get("Content-Type"); got != "text/plain; charset=UTF-8" {
				t.Errorf("Content-Type = %q, want text/plain; charset=UTF-8", got)
			}

			msg := receive(t, received)
			if string(msg.Payload) != tt.body {
				t.Errorf("event payload = %q, want %q", msg.Payload, tt.body)
			}
			if _, err := uuid.Parse(msg.UUID); err != nil {
				t.Errorf("event ID %q is not a UUID: %v", msg.UUID, err)
			}
			if _, ok := events.PublishedAt(msg); !ok {
				t.Errorf("event has no valid %s: %q", events.MetaPublishedAt, msg.Metadata.Get(events.MetaPublishedAt))
			}
			if got := msg.Metadata.Get(events.MetaContentType); got != tt.contentType {
				t.Errorf("event content_type = %q, want %q", got, tt.contentType)
			}
		})
	}
}

func TestPostStuffGivesEveryEventItsOwnID(t *testing.T) {
	t.Parallel()
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10}, nil)
	t.Cleanup(func() { _ = pubSub.Close() })
	received, err := pubSub.Subscribe(context.Background(), "stuff")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(testConfig(), pubSub, slog.New(slog.DiscardHandler))

	seen := map[string]bool{}
	for range 5 {
		if rec := serve(t, srv, http.MethodPost, "/stuff", "same body", "text/plain"); rec.Code != http.StatusOK {
			t.Fatalf("status = %d", rec.Code)
		}
		id := receive(t, received).UUID
		if seen[id] {
			t.Fatalf("event ID %s used twice", id)
		}
		seen[id] = true
	}
}

func TestBadRequestsGetAClearErrorAndPublishNothing(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name          string
		method, path  string
		body          string
		chunked       bool
		wantStatus    int
		wantInMessage string
	}{
		{name: "empty body", method: http.MethodPost, path: "/stuff", wantStatus: http.StatusBadRequest, wantInMessage: "empty"},
		{name: "body one byte over the limit", method: http.MethodPost, path: "/stuff", body: strings.Repeat("x", 65),
			wantStatus: http.StatusRequestEntityTooLarge, wantInMessage: "larger than 64 bytes"},
		{name: "body over the limit without Content-Length", method: http.MethodPost, path: "/stuff",
			body: strings.Repeat("x", 1000), chunked: true,
			wantStatus: http.StatusRequestEntityTooLarge, wantInMessage: "larger than 64 bytes"},
		{name: "GET on /stuff", method: http.MethodGet, path: "/stuff", wantStatus: http.StatusMethodNotAllowed, wantInMessage: "Method Not Allowed"},
		{name: "PUT on /stuff", method: http.MethodPut, path: "/stuff", body: "x", wantStatus: http.StatusMethodNotAllowed, wantInMessage: "Method Not Allowed"},
		{name: "unknown path", method: http.MethodPost, path: "/things", body: "x", wantStatus: http.StatusNotFound, wantInMessage: "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			srv := newServer(testConfig(), pub, slog.New(slog.DiscardHandler))

			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", rec.Code, rec.Body.String(), tt.wantStatus)
			}
			if !strings.Contains(rec.Body.String(), tt.wantInMessage) {
				t.Errorf("body = %q, want it to mention %q", rec.Body.String(), tt.wantInMessage)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if n := pub.calls(); n != 0 {
				t.Errorf("published %d events, want none", n)
			}
		})
	}
}

func TestBrokerFailuresAnswer503(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		pub  message.Publisher
	}{
		{name: "the broker refuses the event", pub: &recordingPublisher{err: errors.New("not connected to AMQP")}},
		{name: "the broker does not confirm within the timeout", pub: &recordingPublisher{delay: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(testConfig(), tt.pub, slog.New(slog.DiscardHandler))

			start := time.Now()
			rec := serve(t, srv, http.MethodPost, "/stuff", "Hello World", "text/plain")

			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status = %d (%q), want 503", rec.Code, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), "event not stored") {
				t.Errorf("body = %q, want it to say the event was not stored", rec.Body.String())
			}
			if strings.Contains(rec.Body.String(), "received:") {
				t.Errorf("body = %q claims the event was received", rec.Body.String())
			}
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("answered after %s, want within the 200ms publish timeout", elapsed)
			}
		})
	}
}

func serve(t *testing.T, h http.Handler, method, path, body, contentType string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	return rec
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-ch:
		msg.Ack()

		return msg
	case <-time.After(5 * time.Second):
		t.Fatal("no event was published")

		return nil
	}
}

// recordingPublisher keeps what it is asked to publish, and fails or stalls
// on demand.
type recordingPublisher struct {
	err   error
	delay time.Duration

	mu   sync.Mutex
	msgs []*message.Message
}

func (p *recordingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	p.msgs = append(p.msgs, msgs...)
	p.mu.Unlock()
	time.Sleep(p.delay)

	return p.err
}

func (p *recordingPublisher) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()

	return len(p.msgs)
}

func (p *recordingPublisher) Close() error { return nil }
