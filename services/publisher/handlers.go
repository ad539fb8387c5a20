package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/events"
)

// newServer routes the publisher's HTTP API. pub is any Watermill publisher:
// nothing here knows which broker is behind it.
func newServer(cfg config.Config, pub message.Publisher, logger *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = plainTextErrors(logger)

	e.Use(
		// A panic in a handler becomes a 500 for that request only.
		middleware.Recover(),
		// One structured line per request, at Debug, or Warn for a failure.
		requestLogger(logger),
		// X-Request-ID in, out and into the event, for following a request.
		correlate,
	)

	h := &stuffHandler{
		publisher: pub,
		topic:     cfg.Topic,
		maxBody:   cfg.Publisher.MaxBodyBytes,
		timeout:   cfg.Publisher.PublishTimeout,
		now:       time.Now,
	}
	e.POST("/stuff", h.post)

	return e
}

// stuffHandler turns a POST /stuff body into one event.
type stuffHandler struct {
	publisher message.Publisher
	topic     string
	maxBody   int64
	timeout   time.Duration
	now       func() time.Time
}

func (h *stuffHandler) post(c echo.Context) error {
	req := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, h.maxBody))
	if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", h.maxBody))
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return echo.NewHTTPError(http.StatusRequestTimeout,
			"request body did not arrive in time: send as many bytes as Content-Length says").SetInternal(err)
	}
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "request body could not be read").SetInternal(err)
	}
	if len(body) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest,
			`request body is empty: send the event text as the body, e.g. curl -d "Hello World"`)
	}

	msg := events.New(body, req.Header.Get(echo.HeaderContentType), h.now())
	tagEvent(c, msg)
	if err := h.publish(req.Context(), msg); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "event not stored, try again: "+publishFailure(err)).
			SetInternal(err)
	}

	return c.String(http.StatusOK, "received: "+string(body))
}

// publishFailure says in a few words, for the client, why an event was not
// stored; the full error goes to the log.
func publishFailure(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the broker did not confirm it in time"
	case errors.Is(err, broker.ErrUnroutable):
		return "no queue took it"
	case errors.Is(err, broker.ErrNotConfirmed):
		return "the broker refused it"
	default:
		return "the broker is unavailable"
	}
}

// publish waits for the broker to confirm msg, at most h.timeout.
//
// Warning: Watermill's Publish takes no deadline, so on timeout the publish
// goes on in the background and may still store the event after the client
// was told 503; a client that retries can then cause a second event with
// the same body. The AMQP publisher of pkg/broker stops at the deadline of
// msg's context, but an event the broker received before it may still be
// stored without its confirm arriving in time.
func (h *stuffHandler) publish(ctx context.Context, msg *message.Message) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	msg.SetContext(ctx)

	done := make(chan error, 1)
	go func() { done <- h.publisher.Publish(h.topic, msg) }()

	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the broker's confirm: %w", ctx.Err())
	}
}
