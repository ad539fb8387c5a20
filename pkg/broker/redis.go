package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack"

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// On Redis a topic is a stream of the same name, and each consumer group a
// Redis Streams consumer group on it: XREADGROUP hands each entry to one
// member of the group, and every group reads every entry. An entry read but
// never acked (its instance died) stays pending and is claimed by a live
// member after redis.claim_after.

func connectRedis(ctx context.Context, cfg config.Config, logger *slog.Logger) (*redis.Client, error) {
	opts, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing redis.url %s: %w", config.RedactURL(cfg.Redis.URL), err)
	}
	opts.DialTimeout = min(cfg.Redis.ConnectTimeout, 5*time.Second)

	client, err := connectWithRetry(ctx, cfg.Redis.ConnectTimeout, logger, func() (*redis.Client, error) {
		c := redis.NewClient(opts)
		pingCtx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
		defer cancel()
		if err := c.Ping(pingCtx).Err(); err != nil {
			_ = c.Close()

			return nil, err
		}

		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to Redis %s: %w", config.RedactURL(cfg.Redis.URL), err)
	}

	return client, nil
}

// declareRedisTopology creates the topic's stream and every group's consumer
// group, reading from the start of the stream, so that entries added before
// a group's first instance starts are kept for it.
func declareRedisTopology(ctx context.Context, client *redis.Client, topic string, groups []string) error {
	for _, group := range groups {
		err := client.XGroupCreateMkStream(ctx, topic, group, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return fmt.Errorf("creating consumer group %s on stream %s: %w", group, topic, err)
		}
	}

	return nil
}

func newRedisPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	logger = logger.With("backend", "redis", "broker_url", config.RedactURL(cfg.Redis.URL))
	client, err := connectRedis(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := declareRedisTopology(ctx, client, cfg.Topic, cfg.Groups); err != nil {
		_ = client.Close()

		return nil, err
	}

	// Warning: streams are not trimmed (no MAXLEN): trimming could drop
	// entries a group has not read yet. Trim old entries out of band.
	pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{
		Client:     client,
		Marshaller: redisMarshaller{},
	}, logging.Watermill(logger))
	if err != nil {
		_ = client.Close()

		return nil, fmt.Errorf("creating Redis publisher: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "groups", cfg.Groups)

	return pub, nil
}

func newRedisSubscriber(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Subscriber, error) {
	logger = logger.With("backend", "redis", "broker_url", config.RedactURL(cfg.Redis.URL))
	client, err := connectRedis(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := declareRedisTopology(ctx, client, cfg.Topic, []string{group}); err != nil {
		_ = client.Close()

		return nil, err
	}

	sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
		Client:        client,
		Unmarshaller:  redisMarshaller{},
		Consumer:      group + "-" + uuid.NewString()[:8],
		ConsumerGroup: group,
		// Entries pending with an instance for claim_after are claimed by
		// another one; look for them several times per claim_after.
		MaxIdleTime:   cfg.Redis.ClaimAfter,
		ClaimInterval: max(cfg.Redis.ClaimAfter/4, 100*time.Millisecond),
		// A nacked entry is handed to this instance's handler again after a pause.
		NackResendSleep: 100 * time.Millisecond,
		BlockTime:       100 * time.Millisecond,
	}, logging.Watermill(logger))
	if err != nil {
		_ = client.Close()

		return nil, fmt.Errorf("creating Redis subscriber: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "consumer_group", group)

	return sub, nil
}

// redisMarshaller writes what Watermill's default one writes, and reads any
// entry without failing: Watermill's own stops the whole subscription on an
// entry it cannot decode (one added by another tool, say).
type redisMarshaller struct{}

func (redisMarshaller) Marshal(topic string, msg *message.Message) (map[string]any, error) {
	return redisstream.DefaultMarshallerUnmarshaller{}.Marshal(topic, msg)
}

func (redisMarshaller) Unmarshal(values map[string]any) (*message.Message, error) {
	id, _ := values[redisstream.UUIDHeaderKey].(string)
	if id == "" {
		id = uuid.NewString()
	}
	payload, _ := values["payload"].(string)

	msg := message.NewMessage(id, []byte(payload))
	if md, _ := values["metadata"].(string); md != "" {
		metadata := make(message.Metadata)
		if err := msgpack.Unmarshal([]byte(md), &metadata); err == nil {
			msg.Metadata = metadata
		}
	}

	return msg, nil
}
