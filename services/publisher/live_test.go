package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/audit"
)

func TestThePageIsServedAtTheRoot(t *testing.T) {
	t.Parallel()
	feed := newTestFeed()
	srv := newServer(testConfig(), &recordingPublisher{}, slog.New(slog.DiscardHandler))
	feed.mount(srv)

	rec := serve(t, srv, http.MethodGet, "/", "", "")

	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{`<form id="send">`, `new EventSource("live")`, `fetch("stuff"`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestTheStreamSendsHelloThenTheHistoryThenLiveRecords(t *testing.T) {
	t.Parallel()
	feed := newTestFeed()
	e := newServer(testConfig(), &recordingPublisher{}, slog.New(slog.DiscardHandler))
	feed.mount(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	feed.add(audit.Record{ID: "r1", Kind: audit.KindPublished, EventID: "e1", Body: "Hello World"})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}
	events := sseReader(resp.Body)

	name, data := events()
	var h hello
	if err := json.Unmarshal([]byte(data), &h); name != "hello" || err != nil || len(h.Groups) != 2 {
		t.Fatalf("first event %s %s, want hello with the groups", name, data)
	}
	if name, data := events(); name != "record" || !strings.Contains(data, `"id":"r1"`) {
		t.Fatalf("second event %s %s, want the record from the history", name, data)
	}

	feed.add(audit.Record{ID: "r2", Kind: audit.KindHandled, EventID: "e1", Group: "consumer", Instance: "7"})
	if name, data := events(); name != "record" || !strings.Contains(data, `"id":"r2"`) {
		t.Fatalf("third event %s %s, want the live record", name, data)
	}

	// Shutting down ends the stream.
	feed.endStreams()
	if _, err := io.ReadAll(resp.Body); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("reading to the end of the stream: %v", err)
	}
}

func TestASlowViewerIsCutOffRatherThanHoldingUpTheFeed(t *testing.T) {
	t.Parallel()
	feed := newTestFeed()
	_, ch, stop := feed.follow()
	defer stop()

	for i := range viewerBuffer + 1 {
		feed.add(audit.Record{ID: string(rune('a' + i%26)), Kind: audit.KindPublished, EventID: "e"})
	}

	n := 0
	for range ch {
		n++
	}
	if n != viewerBuffer {
		t.Errorf("viewer got %d records before its channel closed, want %d", n, viewerBuffer)
	}
	if len(feed.history) != viewerBuffer+1 {
		t.Errorf("history has %d records, want %d", len(feed.history), viewerBuffer+1)
	}
}

func TestThePublisherRecordsEachConfirmedEventOnTheAuditTopic(t *testing.T) {
	t.Parallel()
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10}, nil)
	t.Cleanup(func() { _ = pubSub.Close() })
	records, err := pubSub.Subscribe(context.Background(), "stuff.audit")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	pub := withAuditTrail(pubSub, pubSub, cfg, slog.New(slog.DiscardHandler))

	rec := serve(t, newServer(cfg, pub, slog.New(slog.DiscardHandler)), http.MethodPost, "/stuff", "Hello World", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	r, err := audit.Parse(receive(t, records).Payload)
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != audit.KindPublished || r.Body != "Hello World" || r.EventID == "" || r.At.IsZero() {
		t.Errorf("record = %+v", r)
	}

	if err := pub.Publish("elsewhere", message.NewMessage("x", []byte("not an event"))); err != nil {
		t.Fatal(err)
	}
	pub.(*auditedPublisher).pending.Wait()
	select {
	case m := <-records:
		t.Errorf("a second record for a message on another topic: %s", m.Payload)
	default:
	}
}

func TestAnEventTheBrokerRefusedIsNotRecorded(t *testing.T) {
	t.Parallel()
	inner := &recordingPublisher{err: errors.New("not connected")}
	pub := withAuditTrail(inner, inner, testConfig(), slog.New(slog.DiscardHandler))

	if err := pub.Publish("stuff", message.NewMessage("e1", []byte("x"))); err == nil {
		t.Fatal("Publish succeeded, want the broker's error")
	}
	_ = pub.Close()

	if n := inner.calls.Load(); n != 1 {
		t.Errorf("%d publishes, want only the refused event's", n)
	}
}

func newTestFeed() *liveFeed {
	return &liveFeed{
		hello:   hello{Topic: "stuff", Groups: []string{"consumer", "extraspecialconsumer"}},
		logger:  slog.New(slog.DiscardHandler),
		viewers: map[chan audit.Record]struct{}{},
		ended:   make(chan struct{}),
	}
}

// sseReader returns a function that reads the next server-sent event.
func sseReader(r io.Reader) func() (name, data string) {
	sc := bufio.NewScanner(r)

	return func() (name, data string) {
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && name != "":
				return name, data
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}

		return name, data
	}
}

func TestTheStreamOutlivesTheServersWriteTimeout(t *testing.T) {
	t.Parallel()
	feed := newTestFeed()
	e := newServer(testConfig(), &recordingPublisher{}, slog.New(slog.DiscardHandler))
	feed.mount(e)
	srv := httptest.NewUnstartedServer(e)
	srv.Config.WriteTimeout = 100 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/live", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := sseReader(resp.Body)
	if name, _ := events(); name != "hello" {
		t.Fatalf("first event %q, want hello", name)
	}

	// Not a stand-in for a condition: the point is to outlive the deadline.
	time.Sleep(5 * srv.Config.WriteTimeout)
	feed.add(audit.Record{ID: "late", Kind: audit.KindPublished, EventID: "e1"})

	if name, data := events(); name != "record" || !strings.Contains(data, `"id":"late"`) {
		t.Fatalf("after the write timeout got %q %s, want the record", name, data)
	}
}

func TestTheLivePageSaysSoWhenTheAuditTrailIsOff(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Audit.Enabled = false

	f, err := startLiveFeed(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if !strings.Contains(f.hello.Feed, "audit trail is off") {
		t.Errorf("feed status = %q, want it to say the audit trail is off", f.hello.Feed)
	}
}
