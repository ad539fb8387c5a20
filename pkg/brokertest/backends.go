package brokertest

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// NATSURL is the NATS server (JetStream on) the tests use:
// $MILLRACE_TEST_NATS_URL, or the local one.
func NATSURL() string {
	return envOr("MILLRACE_TEST_NATS_URL", "nats://127.0.0.1:4222")
}

// RedisURL is the Redis the tests use: $MILLRACE_TEST_REDIS_URL, or the local one.
func RedisURL() string {
	return envOr("MILLRACE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
}

// PostgresURL is the PostgreSQL database the tests use:
// $MILLRACE_TEST_POSTGRES_URL, or the local database "test".
func PostgresURL() string {
	return envOr("MILLRACE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
}

// RequireNATS returns the test NATS server's URL, or skips (fails under CI)
// when nothing answers there.
func RequireNATS(t testing.TB) string {
	t.Helper()
	u := NATSURL()
	Require(t, "NATS", hostPort(u, "4222"),
		"start one with JetStream: `go tool task nats-server`, or `nats-server -a 127.0.0.1 -js`")

	return u
}

// RequireRedis returns the test Redis URL, or skips (fails under CI) when
// nothing answers there.
func RequireRedis(t testing.TB) string {
	t.Helper()
	u := RedisURL()
	Require(t, "Redis", hostPort(u, "6379"),
		"start it with `redis-server --daemonize yes --bind 127.0.0.1 --save \"\"`")

	return u
}

// RequirePostgres returns the test database URL, or skips (fails under CI)
// when nothing answers there.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	u := PostgresURL()
	Require(t, "PostgreSQL", hostPort(u, "5432"),
		"start it with `pg_ctlcluster <version> main start` and create the database: `createdb test`")

	return u
}

// DeleteNATSStream removes, when the test ends, the JetStream stream named
// stream and with it its consumers.
func DeleteNATSStream(t testing.TB, natsURL, stream string) {
	t.Helper()
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			t.Logf("deleting stream %s: %v", stream, err)

			return
		}
		defer nc.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, err := jetstream.New(nc)
		if err == nil {
			err = js.DeleteStream(ctx, stream)
		}
		if err != nil {
			t.Logf("deleting stream %s: %v", stream, err)
		}
	})
}

// DeleteRedisStream removes, when the test ends, the stream named topic and
// with it its consumer groups.
func DeleteRedisStream(t testing.TB, redisURL, topic string) {
	t.Helper()
	t.Cleanup(func() {
		opts, err := redis.ParseURL(redisURL)
		if err != nil {
			t.Logf("deleting stream %s: %v", topic, err)

			return
		}
		client := redis.NewClient(opts)
		defer client.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Del(ctx, topic).Err(); err != nil {
			t.Logf("deleting stream %s: %v", topic, err)
		}
	})
}

// DropPostgresTables drops, when the test ends, the given tables.
func DropPostgresTables(t testing.TB, postgresURL string, tables ...string) {
	t.Helper()
	t.Cleanup(func() {
		db, err := sql.Open("pgx", postgresURL)
		if err != nil {
			t.Logf("dropping tables: %v", err)

			return
		}
		defer db.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, table := range tables {
			if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS "`+table+`"`); err != nil {
				t.Logf("dropping table %s: %v", table, err)
			}
		}
	})
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}

	return fallback
}
