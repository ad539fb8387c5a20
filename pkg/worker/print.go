package worker

import (
	"fmt"
	"io"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/events"
)

// PrintHandler is the consumer services' handler: for each event it prints
// the seed's line, "<label> (Instance: <pid>) received: <body>", to out. The
// body is printed as events.Printable renders it: one line per event,
// whatever bytes it holds.
func PrintHandler(out io.Writer, label string, pid int) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := fmt.Fprintf(out, "%s (Instance: %d) received: %s\n", label, pid, events.Printable(msg.Payload))

		return err
	}
}
