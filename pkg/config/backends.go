package config

import (
	"fmt"
	"net/url"
	"time"
)

// NATSConfig configures the NATS JetStream backend.
type NATSConfig struct {
	// URL of the NATS server, nats:// or tls://. Default "nats://localhost:4222".
	URL string `yaml:"url" redact:"url"`
	// ConnectTimeout bounds how long a service retries its first connection
	// before it gives up and exits non-zero. Default 30s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// AckWait is how long an instance may hold an event without acking it
	// before JetStream gives it to another instance of its group. Keep it
	// longer than the slowest handler, retries included. Default 30s.
	AckWait time.Duration `yaml:"ack_wait"`
}

// RedisConfig configures the Redis Streams backend.
type RedisConfig struct {
	// URL of the Redis server, redis:// or rediss://. Default "redis://localhost:6379/0".
	URL string `yaml:"url" redact:"url"`
	// ConnectTimeout bounds how long a service retries its first connection
	// before it gives up and exits non-zero. Default 30s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ClaimAfter is how long an event may stay pending with one instance
	// (one that died, say) before another instance of its group claims it.
	// Keep it longer than the slowest handler, retries included. Default 30s.
	ClaimAfter time.Duration `yaml:"claim_after"`
}

// PostgresConfig configures the PostgreSQL backend.
type PostgresConfig struct {
	// URL of the database, postgres:// or postgresql://.
	// Default "postgres://postgres@localhost:5432/postgres?sslmode=disable".
	URL string `yaml:"url" redact:"url"`
	// ConnectTimeout bounds how long a service retries its first connection
	// before it gives up and exits non-zero. Default 30s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// AckDeadline is how long a handler may take before its event is given
	// back to its group. Keep it longer than the slowest handler, retries
	// included. Default 30s.
	AckDeadline time.Duration `yaml:"ack_deadline"`
	// PollInterval is how often an idle instance looks for new events. Default 250ms.
	PollInterval time.Duration `yaml:"poll_interval"`
}

// postgresMaxTopic keeps "watermill_offsets_<topic>" within PostgreSQL's
// 63-byte identifier limit, beyond which table names would be truncated and
// two topics could share a table.
const postgresMaxTopic = 63 - len("watermill_offsets_")

// validateBackendSettings checks the settings of the chosen backend only.
func (c Config) validateBackendSettings() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	checkURL := func(field, raw string, schemes ...string) {
		u, err := url.Parse(raw)
		if err == nil && u.Host != "" {
			for _, s := range schemes {
				if u.Scheme == s {
					return
				}
			}
		}
		bad(field, "must be a %s:// URL with a host", joinOr(schemes))
	}

	switch c.Backend {
	case "nats":
		checkURL("nats.url", c.NATS.URL, "nats", "tls")
		positive(&errs, "nats.connect_timeout", c.NATS.ConnectTimeout)
		positive(&errs, "nats.ack_wait", c.NATS.AckWait)
	case "redis":
		checkURL("redis.url", c.Redis.URL, "redis", "rediss")
		positive(&errs, "redis.connect_timeout", c.Redis.ConnectTimeout)
		positive(&errs, "redis.claim_after", c.Redis.ClaimAfter)
	case "postgres":
		checkURL("postgres.url", c.Postgres.URL, "postgres", "postgresql")
		positive(&errs, "postgres.connect_timeout", c.Postgres.ConnectTimeout)
		positive(&errs, "postgres.ack_deadline", c.Postgres.AckDeadline)
		positive(&errs, "postgres.poll_interval", c.Postgres.PollInterval)
		if len(c.Topic) > postgresMaxTopic {
			bad("topic", "must be at most %d characters on the postgres backend (table name limit)", postgresMaxTopic)
		}
	}

	return errs
}

func joinOr(s []string) string {
	out := s[0]
	for _, v := range s[1:] {
		out += ":// or " + v
	}

	return out
}
