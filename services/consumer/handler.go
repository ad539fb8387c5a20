package main

import (
	"fmt"
	"io"

	"github.com/ThreeDotsLabs/watermill/message"
)

// newHandler prints the seed's line for each event, with this instance's PID.
func newHandler(out io.Writer, pid int) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := fmt.Fprintf(out, "Consumer (Instance: %d) received: %s\n", pid, msg.Payload)

		return err
	}
}
