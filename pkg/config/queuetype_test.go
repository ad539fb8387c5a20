package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestQueueType(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    string
		wantErr string
	}{
		{"the default is classic", nil, QueueClassic, ""},
		{"quorum is set from the environment", []string{"MILLRACE_AMQP_QUEUE_TYPE=quorum"}, QueueQuorum, ""},
		{
			"an unknown type is refused, naming the key and the valid ones",
			[]string{"MILLRACE_AMQP_QUEUE_TYPE=stream"}, "", `amqp.queue_type: "stream" is not supported (valid: classic, quorum)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _, err := Load(filepath.Join("..", "..", DefaultFile), tt.environ)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to say %q", err, tt.wantErr)
				}

				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.AMQP.QueueType != tt.want {
				t.Errorf("amqp.queue_type = %q, want %q", cfg.AMQP.QueueType, tt.want)
			}
		})
	}
}

func TestDefaultFileMatchesDefaultQueueType(t *testing.T) {
	cfg, _, err := Load(filepath.Join("..", "..", DefaultFile), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.AMQP.QueueType != Default().AMQP.QueueType {
		t.Errorf("%s says %q, Default() %q", DefaultFile, cfg.AMQP.QueueType, Default().AMQP.QueueType)
	}
}
