package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// BenchmarkPostStuff is the publisher's hot path without a broker: the Echo
// stack, reading the body, building the event and publishing it to an
// in-memory GoChannel whose subscriber acks every event.
func BenchmarkPostStuff(b *testing.B) {
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024}, nil)
	b.Cleanup(func() { _ = pubSub.Close() })
	received, err := pubSub.Subscribe(context.Background(), "stuff")
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for msg := range received {
			msg.Ack()
		}
	}()
	srv := newServer(testConfig(), pubSub, slog.New(slog.DiscardHandler))
	const body = "bench 1 123456 1733300000000000000"

	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/stuff", strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status = %d (%q)", rec.Code, rec.Body.String())
		}
	}
}
