// Package config is the one typed configuration every millrace service reads:
// built-in defaults, then a YAML file from configs/, then MILLRACE_* environment
// overrides, validated once at start.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Backends lists the values Backend accepts.
var Backends = []string{"amqp", "nats", "redis", "postgres", "gochannel"}

// Config is the whole configuration of a millrace deployment. Every service
// reads the same file, so the publisher knows the consumer groups whose queues
// it must create and each consumer knows the topic it competes on.
type Config struct {
	// Backend selects the pub/sub implementation: amqp, nats, redis, postgres
	// or gochannel (in-memory, one process only). Default "amqp".
	Backend string `yaml:"backend"`
	// Topic is the Watermill topic events are published to. Default "stuff".
	Topic string `yaml:"topic"`
	// Groups are the consumer groups (one per consumer service type) that must
	// receive every event. The publisher creates their queues before its first
	// publish, so events sent before a consumer type ever ran are kept.
	// Default ["consumer", "extraspecialconsumer"].
	Groups []string `yaml:"groups"`

	AMQP      AMQPConfig      `yaml:"amqp"`
	NATS      NATSConfig      `yaml:"nats"`
	Redis     RedisConfig     `yaml:"redis"`
	Postgres  PostgresConfig  `yaml:"postgres"`
	Publisher PublisherConfig `yaml:"publisher"`
	Consumer  ConsumerConfig  `yaml:"consumer"`
	Log       LogConfig       `yaml:"log"`
	Audit     AuditConfig     `yaml:"audit"`
}

// AMQPConfig configures the RabbitMQ backend.
type AMQPConfig struct {
	// URL of the broker, amqp:// or amqps://. Default "amqp://guest:guest@localhost:5672/".
	URL string `yaml:"url" redact:"url"`
	// ConnectTimeout bounds how long a service retries its first connection
	// before it gives up and exits non-zero. Default 30s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// Prefetch is how many unacknowledged events the broker hands one consumer
	// instance at a time. The broker still deals events round-robin between
	// instances; above 1 an instance finds its next event already delivered
	// instead of waiting a broker round trip after each ack, but a stuck
	// instance holds up to this many events. Default 20.
	Prefetch int `yaml:"prefetch"`
	// PublishChannels is the size of the publisher's pool of confirm channels,
	// which bounds how many publishes wait for a broker confirm at once. Default 16.
	PublishChannels int `yaml:"publish_channels"`
	// QueueType is the type of every consumer group's queue: "classic", or
	// "quorum" for queues replicated across the nodes of a RabbitMQ cluster.
	// RabbitMQ cannot change the type of an existing queue. Default "classic".
	QueueType string `yaml:"queue_type"`
}

// PublisherConfig configures the HTTP publisher service.
type PublisherConfig struct {
	// Listen is the HTTP listen address. Default "127.0.0.1:8000"; use ":8000"
	// to accept connections from other hosts.
	Listen string `yaml:"listen"`
	// MaxBodyBytes is the largest accepted request body. Default 1048576 (1 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// PublishTimeout bounds how long a request waits for the broker to confirm
	// its event before it is answered 503. Default 5s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish
	// after a shutdown signal. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// ConsumerConfig configures the consumer services.
type ConsumerConfig struct {
	// ShutdownTimeout bounds how long an instance waits for its in-flight event
	// to finish after a shutdown signal. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Retry           RetryConfig   `yaml:"retry"`
	// AdminListen is the address of an instance's admin HTTP server
	// (/metrics, /healthz, /readyz). Default "127.0.0.1:0": a free loopback
	// port, logged at start, so that any number of instances fit on one host.
	AdminListen string `yaml:"admin_listen"`
	// CompletedIDsURL is a Redis (redis:// or rediss://) where the instances
	// of a group record the events they completed, so that an event whose ack
	// a broken connection lost is not completed again by another instance of
	// the group. Default "": each instance remembers only its own.
	CompletedIDsURL string `yaml:"completed_ids_url" redact:"url"`
}

// RetryConfig is the in-process retry of a failing handler, before the event
// is parked in its group's poison queue.
type RetryConfig struct {
	// MaxRetries is how many times a failed handler is retried. Default 3.
	MaxRetries int `yaml:"max_retries"`
	// InitialInterval is the wait before the first retry. Default 100ms.
	InitialInterval time.Duration `yaml:"initial_interval"`
	// MaxInterval caps the exponential backoff between retries. Default 2s.
	MaxInterval time.Duration `yaml:"max_interval"`
}

// LogConfig configures the structured logs every service writes to stderr.
type LogConfig struct {
	// Level is debug, info, warn or error. Default "info".
	Level string `yaml:"level"`
	// Format is text (for a terminal) or json. Default "text".
	Format string `yaml:"format"`
}

// Default returns the configuration used when neither a file nor the
// environment says otherwise. configs/default.yaml spells out the same values.
func Default() Config {
	return Config{
		Backend: "amqp",
		Topic:   "stuff",
		Groups:  []string{"consumer", "extraspecialconsumer"},
		AMQP: AMQPConfig{
			URL:             "amqp://guest:guest@localhost:5672/",
			ConnectTimeout:  30 * time.Second,
			Prefetch:        20,
			PublishChannels: 16,
			QueueType:       QueueClassic,
		},
		NATS: NATSConfig{
			URL:            "nats://localhost:4222",
			ConnectTimeout: 30 * time.Second,
			AckWait:        30 * time.Second,
		},
		Redis: RedisConfig{
			URL:            "redis://localhost:6379/0",
			ConnectTimeout: 30 * time.Second,
			ClaimAfter:     30 * time.Second,
		},
		Postgres: PostgresConfig{
			URL:            "postgres://postgres@localhost:5432/postgres?sslmode=disable",
			ConnectTimeout: 30 * time.Second,
			AckDeadline:    30 * time.Second,
			PollInterval:   250 * time.Millisecond,
		},
		Publisher: PublisherConfig{
			Listen:          "127.0.0.1:8000",
			MaxBodyBytes:    1 << 20,
			PublishTimeout:  5 * time.Second,
			ShutdownTimeout: 10 * time.Second,
		},
		Consumer: ConsumerConfig{
			AdminListen:     "127.0.0.1:0",
			ShutdownTimeout: 30 * time.Second,
			Retry: RetryConfig{
				MaxRetries:      3,
				InitialInterval: 100 * time.Millisecond,
				MaxInterval:     2 * time.Second,
			},
		},
		Log:   LogConfig{Level: "info", Format: "text"},
		Audit: AuditConfig{Enabled: true},
	}
}

// Validate reports every problem at once, each naming its field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if !slices.Contains(Backends, c.Backend) {
		bad("backend", "%q is not supported (valid: %s)", c.Backend, strings.Join(Backends, ", "))
	}
	if !validName(c.Topic) {
		bad("topic", "%q must be non-empty letters, digits, '.', '-' or '_'", c.Topic)
	}
	if len(c.Groups) == 0 {
		bad("groups", "must name at least one consumer group")
	}
	for i, g := range c.Groups {
		if !validName(g) {
			bad(fmt.Sprintf("groups[%d]", i), "%q must be non-empty letters, digits, '.', '-' or '_'", g)
		}
		if slices.Index(c.Groups, g) != i {
			bad(fmt.Sprintf("groups[%d]", i), "%q is listed twice", g)
		}
	}

	if c.Backend == "amqp" {
		if u, err := url.Parse(c.AMQP.URL); err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			bad("amqp.url", "must be an amqp:// or amqps:// URL with a host")
		}
		if c.AMQP.Prefetch < 1 {
			bad("amqp.prefetch", "must be at least 1, got %d", c.AMQP.Prefetch)
		}
		if c.AMQP.PublishChannels < 1 {
			bad("amqp.publish_channels", "must be at least 1, got %d", c.AMQP.PublishChannels)
		}
		positive(&errs, "amqp.connect_timeout", c.AMQP.ConnectTimeout)
		if !slices.Contains(QueueTypes, c.AMQP.QueueType) {
			bad("amqp.queue_type", "%q is not supported (valid: %s)", c.AMQP.QueueType, strings.Join(QueueTypes, ", "))
		}
		errs = append(errs, c.validateAMQPNames()...)
	}
	errs = append(errs, c.validateBackendSettings()...)

	if _, _, err := net.SplitHostPort(c.Publisher.Listen); err != nil {
		bad("publisher.listen", "%q is not host:port", c.Publisher.Listen)
	}
	if c.Publisher.MaxBodyBytes < 1 {
		bad("publisher.max_body_bytes", "must be at least 1, got %d", c.Publisher.MaxBodyBytes)
	}
	positive(&errs, "publisher.publish_timeout", c.Publisher.PublishTimeout)
	positive(&errs, "publisher.shutdown_timeout", c.Publisher.ShutdownTimeout)

	positive(&errs, "consumer.shutdown_timeout", c.Consumer.ShutdownTimeout)
	if _, _, err := net.SplitHostPort(c.Consumer.AdminListen); err != nil {
		bad("consumer.admin_listen", "%q is not host:port", c.Consumer.AdminListen)
	}
	if c.Consumer.Retry.MaxRetries < 0 {
		bad("consumer.retry.max_retries", "must not be negative, got %d", c.Consumer.Retry.MaxRetries)
	}
	positive(&errs, "consumer.retry.initial_interval", c.Consumer.Retry.InitialInterval)
	if c.Consumer.Retry.MaxInterval < c.Consumer.Retry.InitialInterval {
		bad("consumer.retry.max_interval", "must not be shorter than consumer.retry.initial_interval")
	}

	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q is not supported (valid: text, json)", c.Log.Format)
	}
	errs = append(errs, c.Audit.validate(c.Topic)...)
	errs = append(errs, c.Consumer.validateCompletedIDs()...)

	return errors.Join(errs...)
}

func positive(errs *[]error, field string, d time.Duration) {
	if d <= 0 {
		*errs = append(*errs, fmt.Errorf("%s: must be a positive duration such as 5s, got %s", field, d))
	}
}

// validName accepts names that are safe as AMQP exchange and queue names,
// NATS subjects, Redis keys and SQL table suffixes alike.
func validName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
		if !ok {
			return false
		}
	}

	return true
}

// ParseLevel turns a log.level value into a slog.Level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}

	return 0, fmt.Errorf("%q is not a level (valid: debug, info, warn, error)", s)
}

// RedactURL returns raw with any password replaced, for logs and errors.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}

	return u.Redacted()
}
