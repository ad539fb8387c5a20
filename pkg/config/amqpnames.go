package config

import (
	"fmt"
	"strings"
)

// amqpMaxName is the longest exchange or queue name AMQP 0-9-1 allows, in
// bytes (a short string).
const amqpMaxName = 255

// amqpReserved starts the exchange and queue names RabbitMQ keeps for itself.
const amqpReserved = "amq."

// validateAMQPNames checks the exchange and queue names the AMQP backend
// builds from topic, audit.topic and groups: each within AMQP's 255 bytes,
// and none in the "amq." namespace RabbitMQ refuses to declare. The other
// names it builds, the topic and audit exchanges and the viewer queues
// "viewer.<audit topic>.<8-character id>", fit whenever validName holds (at
// most 200 characters per name).
func (c Config) validateAMQPNames() []error {
	var errs []error
	for _, t := range []struct{ field, name string }{{"topic", c.Topic}, {"audit.topic", c.Audit.Topic}} {
		if strings.HasPrefix(t.name, amqpReserved) {
			errs = append(errs, fmt.Errorf("%s: %q starts with %q, which RabbitMQ reserves for its own exchanges",
				t.field, t.name, amqpReserved))
		}
	}

	for i, g := range c.Groups {
		// The longest name of a group is its poison queue, "<topic>.<group>.poison".
		if n := len(c.Topic) + len(".") + len(g) + len(".poison"); n > amqpMaxName {
			errs = append(errs, fmt.Errorf("topic, groups[%d]: the poison queue <topic>.<group>.poison would be "+
				"%d bytes and AMQP allows %d: shorten topic or groups[%d] by %d", i, n, amqpMaxName, i, n-amqpMaxName))
		}
	}

	return errs
}
