package main

import (
	"fmt"
	"io"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/events"
)

// newHandler prints the seed's line for each event, with this instance's PID.
// The body is printed as events.Printable renders it: one line per event,
// whatever bytes it holds.
func newHandler(out io.Writer, pid int) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := fmt.Fprintf(out, "Consumer (Instance: %d) received: %s\n", pid, events.Printable(msg.Payload))

		return err
	}
}
