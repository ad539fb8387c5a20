package config

// AMQP queue types, the values AMQPConfig.QueueType accepts.
const (
	// QueueClassic is RabbitMQ's classic queue, which lives on one node.
	QueueClassic = "classic"
	// QueueQuorum is RabbitMQ's quorum queue, replicated across a majority of
	// the cluster's nodes (Raft), so that it survives the loss of a minority.
	QueueQuorum = "quorum"
)

// QueueTypes lists the values AMQPConfig.QueueType accepts.
var QueueTypes = []string{QueueClassic, QueueQuorum}
