package events

import (
	"testing"
	"time"
)

// BenchmarkNew is building one event as the publisher does per request.
func BenchmarkNew(b *testing.B) {
	body := []byte("bench 1 123456 1733300000000000000")
	now := time.Now()

	b.ReportAllocs()
	for b.Loop() {
		if msg := New(body, "text/plain", now); msg.UUID == "" {
			b.Fatal("event without an ID")
		}
	}
}
