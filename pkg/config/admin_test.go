package config

import (
	"strings"
	"testing"
)

func TestConsumerAdminListen(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    string
		wantErr string
	}{
		{name: "the default is a free loopback port", want: "127.0.0.1:0"},
		{name: "the environment sets a fixed port",
			environ: []string{"MILLRACE_CONSUMER_ADMIN_LISTEN=127.0.0.1:9101"}, want: "127.0.0.1:9101"},
		{name: "an address without a port is refused naming the key",
			environ: []string{"MILLRACE_CONSUMER_ADMIN_LISTEN=localhost"}, wantErr: "consumer.admin_listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir()) // no configs/default.yaml
			cfg, _, err := Load("", tt.environ)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}

				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Consumer.AdminListen != tt.want {
				t.Errorf("consumer.admin_listen = %q, want %q", cfg.Consumer.AdminListen, tt.want)
			}
		})
	}
}
