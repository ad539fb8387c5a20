package worker

import (
	"bytes"
	"io"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestPrintHandlerPrintsTheSeedLine(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, label, payload, want string
	}{
		{name: "the Consumer's line", label: "Consumer", payload: "Hello World",
			want: "Consumer (Instance: 4242) received: Hello World\n"},
		{name: "the Extra Special Consumer's line", label: "Extra Special Consumer", payload: "Hello Jack",
			want: "Extra Special Consumer (Instance: 4242) received: Hello Jack\n"},
		{name: "form-encoded text stays as sent", label: "Consumer", payload: "a=1&b=x+y",
			want: "Consumer (Instance: 4242) received: a=1&b=x+y\n"},
		{name: "unicode", label: "Consumer", payload: "héllo 日本 🎉",
			want: "Consumer (Instance: 4242) received: héllo 日本 🎉\n"},
		{name: "a newline cannot fake a second line", label: "Consumer",
			payload: "one\nConsumer (Instance: 1) received: spoof",
			want:    "Consumer (Instance: 4242) received: one\\nConsumer (Instance: 1) received: spoof\n"},
		{name: "terminal escapes are not sent to the terminal", label: "Extra Special Consumer", payload: "\x1b[31mred",
			want: "Extra Special Consumer (Instance: 4242) received: \\x1b[31mred\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer

			if err := PrintHandler(&out, tt.label, 4242)(message.NewMessage("id-1", []byte(tt.payload))); err != nil {
				t.Fatalf("handler returned %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("printed %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// BenchmarkPrintHandler is a consumer's own per-event work, printing to a
// discard writer (the services write to stdout).
func BenchmarkPrintHandler(b *testing.B) {
	handle := PrintHandler(io.Discard, "Consumer", 4242)
	msg := message.NewMessage("id-1", []byte("bench 1 123456 1733300000000000000"))

	b.ReportAllocs()
	for b.Loop() {
		if err := handle(msg); err != nil {
			b.Fatal(err)
		}
	}
}
