package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
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
