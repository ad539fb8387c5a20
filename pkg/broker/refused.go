package broker

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// ErrRefused means the broker answered but refused the connection: a wrong
// user name or password, an unknown virtual host or database, or missing
// permissions. Waiting cannot mend that, so connecting fails at once
// instead of retrying until the connect timeout.
var ErrRefused = errors.New("refused by the broker")

// ErrInterrupted means the caller's context ended (Ctrl-C, SIGTERM) while
// the first connection was still being retried.
var ErrInterrupted = errors.New("interrupted while waiting for the broker")

// refusedError is a connection error that ErrRefused marks as permanent.
type refusedError struct {
	reason string
	err    error
}

func (e *refusedError) Error() string { return e.reason + ", not retrying: " + e.err.Error() }

func (e *refusedError) Unwrap() []error { return []error{ErrRefused, e.err} }

// refused returns err marked with ErrRefused when it says the broker refused
// the login or the access, and nil when retrying may still help. It knows
// how each backend's client reports a refusal.
func refused(err error) error {
	if reason := refusalReason(err); reason != "" {
		return &refusedError{reason: reason, err: err}
	}

	return nil
}

const (
	loginRefused  = "the broker refused the login (check the user name and password in the URL)"
	accessRefused = "the broker refused access (check the user's permissions and the virtual host in the URL)"
)

func refusalReason(err error) string {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) {
		switch {
		case amqpErr.Code == amqp091.AccessRefused && strings.Contains(amqpErr.Reason, "vhost"):
			return accessRefused
		case amqpErr.Code == amqp091.AccessRefused:
			return loginRefused
		// 530 at connection.open: an unknown virtual host or one the user may
		// not use. A reached connection limit is also 530, but it may clear.
		case amqpErr.Code == amqp091.NotAllowed && !strings.Contains(amqpErr.Reason, "limit"):
			return accessRefused
		}
	}

	for _, natsErr := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired} {
		if errors.Is(err, natsErr) {
			return loginRefused
		}
	}

	var redisErr redis.Error
	if errors.As(err, &redisErr) {
		msg := redisErr.Error()
		switch {
		case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"),
			strings.Contains(msg, "called without any password configured"):
			return loginRefused
		case strings.HasPrefix(msg, "NOPERM"):
			return accessRefused
		}
	}

	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return loginRefused
		case "3D000": // invalid_catalog_name: no such database
			return "the database in the URL does not exist"
		}
	}

	return ""
}
