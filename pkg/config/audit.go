package config

import "fmt"

// AuditConfig configures the delivery audit trail: the publisher records
// every event it publishes, and every consumer every event it handles, as a
// small record on an audit topic that the live page and the audit command read.
type AuditConfig struct {
	// Enabled turns the trail on. It costs three more broker messages per
	// event (one published record, one handled record per consumer type), so
	// production profiles turn it off; the live page and the audit need it.
	// Default true.
	Enabled bool `yaml:"enabled"`
	// Topic receives the audit records. Default "", which means "<topic>.audit".
	Topic string `yaml:"topic"`
}

// AuditTopic is the topic audit records go to: audit.topic, or "<topic>.audit"
// when it is empty.
func (c Config) AuditTopic() string {
	if c.Audit.Topic != "" {
		return c.Audit.Topic
	}

	return c.Topic + ".audit"
}

func (a AuditConfig) validate(topic string) []error {
	if a.Topic == "" {
		return nil
	}
	if !validName(a.Topic) {
		return []error{fmt.Errorf("audit.topic: %q must be letters, digits, '.', '-' or '_', or empty for <topic>.audit", a.Topic)}
	}
	if a.Topic == topic {
		return []error{fmt.Errorf("audit.topic: must differ from topic %q, or consumers would handle their own records", topic)}
	}

	return nil
}
