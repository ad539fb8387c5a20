package broker

import (
	"errors"
	"fmt"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/millrace/millrace/pkg/config"
)

// queueTypeArg is the queue argument that selects a RabbitMQ queue type.
const queueTypeArg = "x-queue-type"

// queueArguments are the arguments every consumer group's queue is declared
// with. A classic queue is declared without x-queue-type, as before the
// setting existed, so queues made by earlier versions still match.
//
// Warning: from RabbitMQ 4.0 a quorum queue drops an event, or dead-letters it
// if a policy names a dead-letter exchange, once its x-delivery-count passes
// the default delivery limit of 20; up to 4.2 every nack of a failing handler
// counts. Nothing here sets a limit or a dead-letter exchange: that is left to
// broker policy.
func queueArguments(queueType string) amqp091.Table {
	if queueType == config.QueueQuorum {
		return amqp091.Table{queueTypeArg: config.QueueQuorum}
	}

	return nil
}

// queueDeclareError explains the refusal RabbitMQ answers when a queue
// already exists with other arguments, most often another type: a queue's
// type is fixed when it is created.
func queueDeclareError(queue string, err error) error {
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.PreconditionFailed {
		return fmt.Errorf("declaring queue %s: %w", queue, err)
	}
	if strings.Contains(amqpErr.Reason, queueTypeArg) {
		return fmt.Errorf("declaring queue %s: it exists with another queue type than amqp.queue_type asks for, "+
			"and RabbitMQ cannot change the type of a queue; set amqp.queue_type to the queue's type, "+
			"or stop its consumers, let them drain it and delete it (rabbitmqctl delete_queue %s) "+
			"so that it is created again with the new type: %w", queue, queue, err)
	}

	return fmt.Errorf("declaring queue %s: it exists with other arguments; delete it or match them: %w", queue, err)
}

// earlierDeliveries is how many times a quorum queue has delivered this
// event before, from the headers it adds from the first redelivery on.
// Up to RabbitMQ 4.2 x-delivery-count counts every return to the queue.
// From 4.3 it counts only returns that mark a failure (basic.reject, a lost
// channel), not the basic.nack Watermill sends, and x-acquired-count counts
// every delivery; so x-acquired-count is read first where it exists.
// Classic queues add neither header.
func earlierDeliveries(headers amqp091.Table) (int64, bool) {
	for _, key := range []string{"x-acquired-count", "x-delivery-count"} {
		switch n := headers[key].(type) {
		case int64:
			return n, true
		case int32:
			return int64(n), true
		case int16:
			return int64(n), true
		case int8:
			return int64(n), true
		case int:
			return int64(n), true
		}
	}

	return 0, false
}
