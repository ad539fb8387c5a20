package broker_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

func TestABrokerThatRefusesTheLoginFailsAtOnce(t *testing.T) {
	t.Parallel()
	const secret = "wrong-" + "s3cret"

	tests := []struct {
		name    string
		backend string
		// url gives the test server's URL, or skips, and edits it to be refused.
		url  func(t *testing.T) string
		set  func(c *config.Config, url string)
		want []string
	}{
		{
			name:    "a wrong RabbitMQ password",
			backend: "amqp",
			url: func(t *testing.T) string {
				u := mustParse(t, brokertest.RequireAMQP(t))
				u.User = url.UserPassword(u.User.Username(), secret)

				return u.String()
			},
			set:  func(c *config.Config, u string) { c.AMQP.URL = u },
			want: []string{"refused the login", "xxxxx@", "not retrying"},
		},
		{
			name:    "an unknown RabbitMQ virtual host",
			backend: "amqp",
			url: func(t *testing.T) string {
				u := mustParse(t, brokertest.RequireAMQP(t))
				u.Path = "/" + brokertest.Topic(t)

				return u.String()
			},
			set:  func(c *config.Config, u string) { c.AMQP.URL = u },
			want: []string{"refused access", "not retrying"},
		},
		{
			name:    "a wrong Redis user and password",
			backend: "redis",
			url: func(t *testing.T) string {
				u := mustParse(t, brokertest.RequireRedis(t))
				u.User = url.UserPassword("millrace-nobody", secret)

				return u.String()
			},
			set:  func(c *config.Config, u string) { c.Redis.URL = u },
			want: []string{"refused the login", "not retrying"},
		},
		{
			name:    "an unknown PostgreSQL database",
			backend: "postgres",
			url: func(t *testing.T) string {
				u := mustParse(t, brokertest.RequirePostgres(t))
				u.Path = "/" + strings.ReplaceAll(brokertest.Topic(t), "-", "_")

				return u.String()
			},
			set:  func(c *config.Config, u string) { c.Postgres.URL = u },
			want: []string{"database in the URL does not exist", "not retrying"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Backend = tt.backend
			// Short enough for every backend; nothing is declared on a refusal.
			topic := brokertest.Topic(t)
			cfg.Topic = "refused-" + topic[len(topic)-8:]
			tt.set(&cfg, tt.url(t))
			if err := cfg.Validate(); err != nil {
				t.Fatalf("test configuration: %v", err)
			}

			for _, role := range []string{"publisher", "subscriber"} {
				start := time.Now()
				var err error
				if role == "publisher" {
					_, err = broker.NewPublisher(context.Background(), cfg, discard())
				} else {
					_, err = broker.NewSubscriber(context.Background(), cfg, "alpha", discard())
				}
				elapsed := time.Since(start)

				if !errors.Is(err, broker.ErrRefused) {
					t.Fatalf("%s: error %v, want ErrRefused", role, err)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: error %q does not say %q", role, err, w)
					}
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: error %q shows the password", role, err)
				}
				// The connect timeout is 30 s; a refusal must not wait for it.
				if elapsed > 10*time.Second {
					t.Errorf("%s: failed after %s, want at once", role, elapsed)
				}
				t.Logf("role=%s elapsed=%s error=%q", role, elapsed.Round(time.Millisecond), err)
			}
		})
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}

	return u
}
