package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// fakeRedisError is what go-redis returns for a server error reply.
type fakeRedisError string

func (e fakeRedisError) Error() string { return string(e) }
func (fakeRedisError) RedisError()     {}

func TestRefusedTellsARefusalFromAnOutage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"an AMQP login refused by the broker", &amqp091.Error{Code: 403, Server: true,
			Reason: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"}, true},
		{"an AMQP socket closed after the login (the client's fallback)",
			fmt.Errorf("cannot connect to AMQP: %w", amqp091.ErrCredentials), true},
		{"an AMQP virtual host the user may not use", amqp091.ErrVhost, true},
		{"an AMQP virtual host that does not exist", &amqp091.Error{Code: 530, Server: true,
			Reason: "NOT_ALLOWED - vhost nowhere not found"}, true},
		{"an AMQP connection limit, which may clear", &amqp091.Error{Code: 530, Server: true,
			Reason: "NOT_ALLOWED - connection limit (10) is reached"}, false},
		{"an AMQP connection forced closed by an operator", &amqp091.Error{Code: 320, Server: true,
			Reason: "CONNECTION_FORCED - broker forced connection closure"}, false},
		{"a NATS authorization violation", fmt.Errorf("dial: %w", nats.ErrAuthorization), true},
		{"a NATS server that is not there", nats.ErrNoServers, false},
		{"a Redis wrong password", fakeRedisError("WRONGPASS invalid username-password pair or user is disabled."), true},
		{"a Redis that wants a password", fakeRedisError("NOAUTH Authentication required."), true},
		{"a Redis that is loading its data", fakeRedisError("LOADING Redis is loading the dataset in memory"), false},
		{"a PostgreSQL wrong password", &pgconn.PgError{Code: "28P01"}, true},
		{"a PostgreSQL role that does not exist", fmt.Errorf("ping: %w", &pgconn.PgError{Code: "28000"}), true},
		{"a PostgreSQL database that does not exist", &pgconn.PgError{Code: "3D000"}, true},
		{"a PostgreSQL that is starting up", &pgconn.PgError{Code: "57P03"}, false},
		{"a refused TCP connection", errors.New("dial tcp 127.0.0.1:5672: connect: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := refused(tt.err)
			if (got != nil) != tt.want {
				t.Fatalf("refused(%v) = %v, want a refusal: %v", tt.err, got, tt.want)
			}
			if got != nil && (!errors.Is(got, ErrRefused) || !errors.Is(got, tt.err)) {
				t.Errorf("%v does not wrap both ErrRefused and the client's error", got)
			}
		})
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestConnectWithRetryStopsAtARefusal(t *testing.T) {
	t.Parallel()
	attempts := 0

	_, err := connectWithRetry(context.Background(), time.Minute, quiet(), func() (int, error) {
		attempts++

		return 0, amqp091.ErrCredentials
	})

	if attempts != 1 {
		t.Errorf("%d attempts, want 1", attempts)
	}
	if !errors.Is(err, ErrRefused) || !errors.Is(err, amqp091.ErrCredentials) {
		t.Errorf("error %v, want ErrRefused wrapping the client's error", err)
	}
}

func TestConnectWithRetryReportsAnInterruptionAsSuch(t *testing.T) {
	t.Parallel()
	outage := errors.New("connection refused")

	tests := []struct {
		name string
		// connect is called with cancel, the cancel of the caller's context.
		connect func(attempt int, cancel context.CancelFunc) error
	}{
		{
			name: "cancelled while an attempt was under way",
			connect: func(attempt int, cancel context.CancelFunc) error {
				if attempt == 2 {
					cancel()
				}

				return outage
			},
		},
		{
			name: "cancelled while waiting to retry",
			connect: func(attempt int, cancel context.CancelFunc) error {
				if attempt == 2 {
					time.AfterFunc(20*time.Millisecond, cancel)
				}

				return outage
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			attempts := 0

			_, err := connectWithRetry(ctx, time.Minute, quiet(), func() (int, error) {
				attempts++

				return 0, tt.connect(attempts, cancel)
			})

			if !errors.Is(err, ErrInterrupted) || !errors.Is(err, outage) {
				t.Errorf("error %v, want ErrInterrupted with the last error", err)
			}
			if strings.Contains(err.Error(), "gave up") {
				t.Errorf("error %q reports a timeout", err)
			}
			if attempts != 2 {
				t.Errorf("%d attempts, want 2", attempts)
			}
		})
	}
}

func TestConnectWithRetryStillGivesUpAtItsTimeout(t *testing.T) {
	t.Parallel()

	_, err := connectWithRetry(context.Background(), 100*time.Millisecond, quiet(), func() (int, error) {
		return 0, errors.New("connection refused")
	})

	if err == nil || errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "gave up after") {
		t.Errorf("error %v, want a timeout that is not an interruption", err)
	}
}
