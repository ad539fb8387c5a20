package config

import (
	"strings"
	"testing"
)

func TestTheAuditTopicFollowsTheTopicUnlessSet(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, topic, audit, want string
	}{
		{name: "empty derives it from the topic", topic: "stuff", want: "stuff.audit"},
		{name: "a test topic gets its own audit topic", topic: "test-x-1234", want: "test-x-1234.audit"},
		{name: "a set value wins", topic: "stuff", audit: "trail", want: "trail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			cfg.Topic, cfg.Audit.Topic = tt.topic, tt.audit

			if got := cfg.AuditTopic(); got != tt.want {
				t.Errorf("AuditTopic() = %q, want %q", got, tt.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestABadAuditTopicIsRejected(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, audit, want string
	}{
		{name: "spaces in the name", audit: "a b", want: "audit.topic:"},
		{name: "the event topic itself", audit: "stuff", want: "must differ from topic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			cfg.Audit.Topic = tt.audit

			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
