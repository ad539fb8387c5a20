package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
)

// recordingPublisher stores what it is asked to publish, or fails as told.
type recordingPublisher struct {
	calls atomic.Int32 // Publish calls, failed ones included

	mu    sync.Mutex
	msgs  []*message.Message
	err   error
	block bool // wait for the message's context to end, like a broker that never confirms
}

func (p *recordingPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.calls.Add(1)
	if p.block {
		<-msgs[0].Context().Done()

		return msgs[0].Context().Err()
	}
	if p.err != nil {
		return p.err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, msgs...)

	return nil
}

func (p *recordingPublisher) Close() error { return nil }

func (p *recordingPublisher) published() []*message.Message {
	p.mu.Lock()
	defer p.mu.Unlock()

	return append([]*message.Message(nil), p.msgs...)
}

func TestABodyThatCannotBeReadGetsAClearErrorAndPublishesNothing(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantText   string
	}{
		{name: "a body that stops arriving before Content-Length is reached gets a 408",
			err: os.ErrDeadlineExceeded, wantStatus: http.StatusRequestTimeout,
			wantText: "request body did not arrive in time: send as many bytes as Content-Length says\n"},
		{name: "a broken body gets a 400 without the connection's details",
			err: errors.New("read tcp 127.0.0.1:8000->127.0.0.1:4242: connection reset"), wantStatus: http.StatusBadRequest,
			wantText: "request body could not be read\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			req := httptest.NewRequest(http.MethodPost, "/stuff", failingBody{tt.err})
			rec := httptest.NewRecorder()

			newServer(config.Default(), pub, slog.New(slog.DiscardHandler)).ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantText {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantText)
			}
			if n := pub.calls.Load(); n != 0 {
				t.Errorf("published %d events, want none", n)
			}
		})
	}
}

// failingBody is a request body whose reading fails with err.
type failingBody struct{ err error }

func (f failingBody) Read([]byte) (int, error) { return 0, f.err }

// oneByteAtATime hides the length of a body, so the request is sent chunked
// with no Content-Length.
type oneByteAtATime struct{ r io.Reader }

func (o oneByteAtATime) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestBadInputGetsAClear4xxAndPublishesNothing(t *testing.T) {
	t.Parallel()
	const limit = 64

	tests := []struct {
		name       string
		method     string
		path       string
		body       io.Reader
		pub        *recordingPublisher
		wantStatus int
		wantText   string
	}{
		{name: "an empty body is a bad request", method: http.MethodPost, path: "/stuff",
			body: strings.NewReader(""), wantStatus: http.StatusBadRequest, wantText: "request body is empty"},
		{name: "a body over the limit with a Content-Length is too large", method: http.MethodPost, path: "/stuff",
			body: strings.NewReader(strings.Repeat("x", limit+1)), wantStatus: http.StatusRequestEntityTooLarge,
			wantText: "larger than 64 bytes"},
		{name: "a body over the limit sent chunked without a Content-Length is too large", method: http.MethodPost,
			path: "/stuff", body: oneByteAtATime{strings.NewReader(strings.Repeat("x", 10*limit))},
			wantStatus: http.StatusRequestEntityTooLarge, wantText: "larger than 64 bytes"},
		{name: "GET on /stuff is a wrong method", method: http.MethodGet, path: "/stuff",
			wantStatus: http.StatusMethodNotAllowed, wantText: "Method Not Allowed"},
		{name: "PUT on /stuff is a wrong method", method: http.MethodPut, path: "/stuff",
			body: strings.NewReader("x"), wantStatus: http.StatusMethodNotAllowed, wantText: "Method Not Allowed"},
		{name: "an unknown path is not found", method: http.MethodPost, path: "/things",
			body: strings.NewReader("x"), wantStatus: http.StatusNotFound, wantText: "Not Found"},
		{name: "an unreachable broker gets a 503", method: http.MethodPost, path: "/stuff",
			body: strings.NewReader("x"), pub: &recordingPublisher{err: errors.New("dial tcp: connection refused")},
			wantStatus: http.StatusServiceUnavailable, wantText: "event not stored, try again: the broker is unavailable"},
		{name: "a broker that never confirms gets a 503 at the publish timeout", method: http.MethodPost,
			path: "/stuff", body: strings.NewReader("x"), pub: &recordingPublisher{block: true},
			wantStatus: http.StatusServiceUnavailable, wantText: "the broker did not confirm it in time"},
		{name: "an event no queue takes gets a 503 saying so", method: http.MethodPost, path: "/stuff",
			body: strings.NewReader("x"), pub: &recordingPublisher{err: fmt.Errorf("publishing: %w", broker.ErrUnroutable)},
			wantStatus: http.StatusServiceUnavailable, wantText: "event not stored, try again: no queue took it"},
		{name: "an event the broker nacks gets a 503 saying so", method: http.MethodPost, path: "/stuff",
			body: strings.NewReader("x"), pub: &recordingPublisher{err: broker.ErrNotConfirmed},
			wantStatus: http.StatusServiceUnavailable, wantText: "event not stored, try again: the broker refused it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := tt.pub
			if pub == nil {
				pub = &recordingPublisher{}
			}
			cfg := config.Default()
			cfg.Publisher.MaxBodyBytes = limit
			cfg.Publisher.PublishTimeout = 300 * time.Millisecond
			srv := httptest.NewServer(newServer(cfg, pub, slog.New(slog.DiscardHandler)))
			defer srv.Close()

			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, tt.method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			text, _ := io.ReadAll(resp.Body)

			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(text), tt.wantText) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, text, tt.wantStatus, tt.wantText)
			}
			if !strings.HasSuffix(string(text), "\n") || strings.Count(string(text), "\n") != 1 {
				t.Errorf("error answer %q is not one line of text", text)
			}
			if n := len(pub.published()); n != 0 {
				t.Errorf("%d events published, want none", n)
			}
		})
	}
}

func TestAnyBodyAndContentTypeArePassedThroughExactly(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name        string
		body        string
		contentType string
	}{
		{name: "plain ASCII sent as a form by curl -d", body: "Hello World",
			contentType: "application/x-www-form-urlencoded"},
		{name: "UTF-8 of every width", body: "a é € 𝄞 中文 😀", contentType: "text/plain; charset=utf-8"},
		{name: "CRLF line ends", body: "line one\r\nline two\r\n", contentType: "text/plain"},
		{name: "NUL bytes", body: "before\x00after\x00", contentType: "application/octet-stream"},
		{name: "leading and trailing spaces", body: "  spaced out \t ", contentType: ""},
		{name: "JSON is not parsed", body: `{"a": [1, 2, "x"]}`, contentType: "application/json"},
		{name: "form syntax is not decoded", body: "a=1&b=%20+x", contentType: "application/x-www-form-urlencoded"},
		{name: "bytes that are not UTF-8", body: "\xff\xfe\xfd", contentType: "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pub := &recordingPublisher{}
			srv := httptest.NewServer(newServer(config.Default(), pub, slog.New(slog.DiscardHandler)))
			defer srv.Close()

			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/stuff",
				bytes.NewReader([]byte(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer resp.Body.Close()
			text, _ := io.ReadAll(resp.Body)

			if resp.StatusCode != http.StatusOK || string(text) != "received: "+tt.body {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, text, "received: "+tt.body)
			}
			msgs := pub.published()
			if len(msgs) != 1 {
				t.Fatalf("%d events published, want 1", len(msgs))
			}
			if string(msgs[0].Payload) != tt.body {
				t.Errorf("event payload %q, want %q", msgs[0].Payload, tt.body)
			}
		})
	}
}
