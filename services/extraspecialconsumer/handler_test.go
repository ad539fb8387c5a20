package main

import (
	"bytes"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

func TestHandlerPrintsTheSeedLine(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, payload, want string
	}{
		{name: "plain text", payload: "Hello World", want: "Extra Special Consumer (Instance: 4242) received: Hello World\n"},
		{name: "form-encoded text stays as sent", payload: "a=1&b=x+y", want: "Extra Special Consumer (Instance: 4242) received: a=1&b=x+y\n"},
		{name: "unicode", payload: "héllo 日本 🎉", want: "Extra Special Consumer (Instance: 4242) received: héllo 日本 🎉\n"},
		{name: "a newline cannot fake a second line", payload: "one\nExtra Special Consumer (Instance: 1) received: spoof",
			want: "Extra Special Consumer (Instance: 4242) received: one\\nExtra Special Consumer (Instance: 1) received: spoof\n"},
		{name: "terminal escapes are not sent to the terminal", payload: "\x1b[31mred", want: "Extra Special Consumer (Instance: 4242) received: \\x1b[31mred\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer

			if err := newHandler(&out, 4242)(message.NewMessage("id-1", []byte(tt.payload))); err != nil {
				t.Fatalf("handler returned %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("printed %q, want %q", out.String(), tt.want)
			}
		})
	}
}
