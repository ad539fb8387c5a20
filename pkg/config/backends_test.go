package config_test

import (
	"strings"
	"testing"

	"github.com/millrace/millrace/pkg/config"
)

func TestBackendSettings(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		environ []string
		want    []string // substrings of the error; none means valid
	}{
		{
			name:    "an unknown backend is refused with the list of valid ones",
			environ: []string{"MILLRACE_BACKEND=kafka"},
			want:    []string{`backend: "kafka" is not supported (valid: amqp, nats, redis, postgres, gochannel)`},
		},
		{
			name:    "nats with its defaults is valid",
			environ: []string{"MILLRACE_BACKEND=nats"},
		},
		{
			name:    "redis with its defaults is valid",
			environ: []string{"MILLRACE_BACKEND=redis"},
		},
		{
			name:    "postgres with its defaults is valid",
			environ: []string{"MILLRACE_BACKEND=postgres"},
		},
		{
			name:    "gochannel needs no setting",
			environ: []string{"MILLRACE_BACKEND=gochannel"},
		},
		{
			name:    "a missing NATS URL is named",
			environ: []string{"MILLRACE_BACKEND=nats", "MILLRACE_NATS_URL="},
			want:    []string{"nats.url: must be a nats:// or tls:// URL with a host"},
		},
		{
			name:    "a Redis URL of the wrong scheme and a zero claim time are both named",
			environ: []string{"MILLRACE_BACKEND=redis", "MILLRACE_REDIS_URL=http://localhost", "MILLRACE_REDIS_CLAIM_AFTER=0s"},
			want:    []string{"redis.url: must be a redis:// or rediss:// URL", "redis.claim_after: must be a positive duration"},
		},
		{
			name:    "a missing PostgreSQL URL and a topic too long for its table names are named",
			environ: []string{"MILLRACE_BACKEND=postgres", "MILLRACE_POSTGRES_URL=", "MILLRACE_TOPIC=" + strings.Repeat("t", 50)},
			want:    []string{"postgres.url: must be a postgres:// or postgresql:// URL", "topic: must be at most 45 characters"},
		},
		{
			name:    "the settings of a backend not chosen are not checked",
			environ: []string{"MILLRACE_BACKEND=amqp", "MILLRACE_NATS_URL=", "MILLRACE_REDIS_URL=", "MILLRACE_POSTGRES_URL="},
		},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := config.Load("", c.environ)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}

				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got none", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
