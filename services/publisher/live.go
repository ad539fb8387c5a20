package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"

	"github.com/millrace/millrace/pkg/audit"
	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
)

//go:embed live.html
var livePage []byte

// Sizes of the live feed.
const (
	// historySize is how many recent records a new viewer is sent first.
	historySize = 1000
	// viewerBuffer is how many records a slow viewer may lag behind before its
	// stream is ended (its browser reconnects and starts from the history).
	viewerBuffer = 256
	// keepAlive is how often an idle stream gets a comment line, so that
	// proxies and browsers keep it open.
	keepAlive = 15 * time.Second
)

// hello is the first server-sent event of a stream: what the page needs to
// draw its columns.
type hello struct {
	Topic  string   `json:"topic"`
	Groups []string `json:"groups"`
	// Feed is "" when records flow, else why they do not.
	Feed string `json:"feed,omitempty"`
}

// liveFeed reads the audit topic as a broadcast viewer and streams every
// record to the browsers on GET /live, after the recent history.
type liveFeed struct {
	hello  hello
	sub    message.Subscriber
	logger *slog.Logger

	mu      sync.Mutex
	history []audit.Record
	viewers map[chan audit.Record]struct{}
	ended   chan struct{}
	endOnce sync.Once
	reading sync.WaitGroup
}

// startLiveFeed subscribes to the audit topic. A backend without broadcast
// subscriptions gives a page that says so instead of a failure to start.
func startLiveFeed(ctx context.Context, cfg config.Config, logger *slog.Logger) (*liveFeed, error) {
	f := &liveFeed{
		hello:   hello{Topic: cfg.Topic, Groups: cfg.Groups},
		logger:  logger,
		viewers: map[chan audit.Record]struct{}{},
		ended:   make(chan struct{}),
	}

	if !cfg.Audit.Enabled {
		f.hello.Feed = "the audit trail is off (audit.enabled: false), so there is nothing to show"

		return f, nil
	}
	sub, err := broker.NewBroadcastSubscriber(ctx, cfg, logger)
	if errors.Is(err, broker.ErrBroadcastUnsupported) {
		f.hello.Feed = err.Error()
		logger.Warn("live page has no feed", "error", err)

		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("subscribing the live page: %w", err)
	}
	records, err := sub.Subscribe(ctx, cfg.AuditTopic())
	if err != nil {
		_ = sub.Close()

		return nil, fmt.Errorf("subscribing the live page to %s: %w", cfg.AuditTopic(), err)
	}
	f.sub = sub
	f.reading.Go(func() { f.read(records) })
	logger.Info("live page following the audit trail", "audit_topic", cfg.AuditTopic())

	return f, nil
}

func (f *liveFeed) read(msgs <-chan *message.Message) {
	for msg := range msgs {
		r, err := audit.Parse(msg.Payload)
		msg.Ack()
		if err != nil {
			f.logger.Warn("ignoring a message on the audit topic", "message_uuid", msg.UUID, "error", err)

			continue
		}
		f.add(r)
	}
}

func (f *liveFeed) add(r audit.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.history) == historySize {
		f.history = append(f.history[:0], f.history[1:]...)
	}
	f.history = append(f.history, r)
	for ch := range f.viewers {
		select {
		case ch <- r:
		default:
			// Too slow: end its stream rather than hold up the others.
			delete(f.viewers, ch)
			close(ch)
		}
	}
}

// follow returns the history so far and a channel of the records after it.
func (f *liveFeed) follow() ([]audit.Record, chan audit.Record, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan audit.Record, viewerBuffer)
	f.viewers[ch] = struct{}{}
	history := append([]audit.Record(nil), f.history...)

	return history, ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.viewers[ch]; ok {
			delete(f.viewers, ch)
			close(ch)
		}
	}
}

// mount routes the page at / and its stream at /live.
func (f *liveFeed) mount(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, livePage)
	})
	e.GET("/live", f.stream)
}

// stream sends server-sent events: "hello" first, then one "record" per
// audit record, until the client leaves or the server shuts down.
func (f *liveFeed) stream(c echo.Context) error {
	w := c.Response()
	// The server's write timeout is for requests, not for a stream.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		f.logger.Debug("clearing the stream's write deadline", "error", err)
	}
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.WriteHeader(http.StatusOK)

	history, records, stop := f.follow()
	defer stop()
	if err := send(w, "hello", f.hello); err != nil {
		return nil
	}
	for _, r := range history {
		if err := send(w, "record", r); err != nil {
			return nil
		}
	}
	w.Flush()

	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-f.ended:
			return nil
		case <-tick.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
		case r, ok := <-records:
			if !ok {
				return nil
			}
			if err := send(w, "record", r); err != nil {
				return nil
			}
		}
		w.Flush()
	}
}

// send writes one server-sent event whose data is v as JSON.
func send(w http.ResponseWriter, event string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)

	return err
}

// endStreams ends every open stream, so that the HTTP server can shut down.
func (f *liveFeed) endStreams() {
	f.endOnce.Do(func() { close(f.ended) })
}

// Close ends the streams and unsubscribes from the audit topic.
func (f *liveFeed) Close() error {
	f.endStreams()
	if f.sub == nil {
		return nil
	}
	err := f.sub.Close()
	f.reading.Wait()

	return err
}
