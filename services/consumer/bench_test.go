package main

import (
	"io"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// BenchmarkHandler is the consumer's per-event work, printing to a discard
// writer (the real one writes to stdout).
func BenchmarkHandler(b *testing.B) {
	handle := newHandler(io.Discard, 4242)
	msg := message.NewMessage("id-1", []byte("bench 1 123456 1733300000000000000"))

	b.ReportAllocs()
	for b.Loop() {
		if err := handle(msg); err != nil {
			b.Fatal(err)
		}
	}
}
