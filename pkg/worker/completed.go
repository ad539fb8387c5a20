package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/millrace/millrace/pkg/config"
)

// completedIDsTTL is how long a completed event ID stays in the shared
// log: far longer than any redelivery takes.
const completedIDsTTL = 24 * time.Hour

// redisCompletions is a completion log in Redis, shared by the instances of
// one consumer group: one key per completed event, expiring after
// completedIDsTTL.
type redisCompletions struct {
	client *redis.Client
	prefix string
}

// newRedisCompletions connects to the Redis at rawURL for group's log of
// topic's events.
func newRedisCompletions(ctx context.Context, rawURL, topic, group string) (*redisCompletions, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("consumer.completed_ids_url: %w", err)
	}
	client := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()

		return nil, fmt.Errorf("connecting to the completed-events Redis %s: %w", config.RedactURL(rawURL), err)
	}

	return &redisCompletions{client: client, prefix: "millrace:completed:" + topic + ":" + group + ":"}, nil
}

func (r *redisCompletions) Completed(ctx context.Context, id string) (bool, error) {
	err := r.client.Get(ctx, r.prefix+id).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}

	return err == nil, err
}

func (r *redisCompletions) Record(ctx context.Context, id string) error {
	return r.client.Set(ctx, r.prefix+id, "1", completedIDsTTL).Err()
}

func (r *redisCompletions) Close() error {
	return r.client.Close()
}
