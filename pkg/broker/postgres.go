package broker

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/millrace/millrace/pkg/config"
	"github.com/millrace/millrace/pkg/logging"
)

// On PostgreSQL a topic is a table of events, "watermill_<topic>", and each
// consumer group a row of "watermill_offsets_<topic>" holding how far the
// group has read. An instance reads the next event while holding that row
// locked (SELECT ... FOR UPDATE) and moves the offset in the same transaction
// once the event is acked, so one event goes to one instance of the group.
//
// Warning: the lock also means that the instances of a group take turns, one
// event at a time; more instances add availability, not throughput.

func postgresSchema() wmsql.DefaultPostgreSQLSchema {
	return wmsql.DefaultPostgreSQLSchema{
		// Payloads are arbitrary bytes, not JSON.
		GeneratePayloadType: func(string) string { return "BYTEA" },
		// One event per transaction: a crash redelivers at most that one.
		SubscribeBatchSize: 1,
	}
}

func connectPostgres(ctx context.Context, cfg config.Config, logger *slog.Logger) (*sql.DB, error) {
	db, err := connectWithRetry(ctx, cfg.Postgres.ConnectTimeout, logger, func() (*sql.DB, error) {
		db, err := sql.Open("pgx", cfg.Postgres.URL)
		if err != nil {
			return nil, err
		}
		pingCtx, cancel := context.WithTimeout(ctx, min(cfg.Postgres.ConnectTimeout, 5*time.Second))
		defer cancel()
		if err := db.PingContext(pingCtx); err != nil {
			_ = db.Close()

			return nil, err
		}

		return db, nil
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL %s: %w", config.RedactURL(cfg.Postgres.URL), err)
	}

	return db, nil
}

// declarePostgresTopology creates the topic's tables and an offset row at the
// start for every group, so that events inserted before a group's first
// instance starts are read by it.
func declarePostgresTopology(ctx context.Context, db *sql.DB, topic string, groups []string) error {
	beginner := wmsql.BeginnerFromStdSQL(db)
	offsets := wmsql.DefaultPostgreSQLOffsetsAdapter{}
	for _, group := range groups {
		sub, err := wmsql.NewSubscriber(beginner, wmsql.SubscriberConfig{
			ConsumerGroup:  group,
			SchemaAdapter:  postgresSchema(),
			OffsetsAdapter: offsets,
		}, nil)
		if err != nil {
			return fmt.Errorf("preparing tables of topic %s: %w", topic, err)
		}
		if err := sub.SubscribeInitialize(topic); err != nil {
			return fmt.Errorf("creating tables of topic %s: %w", topic, err)
		}
		queries, err := offsets.BeforeSubscribingQueries(wmsql.BeforeSubscribingQueriesParams{
			Topic: topic, ConsumerGroup: group,
		})
		if err != nil {
			return fmt.Errorf("preparing offset of group %s: %w", group, err)
		}
		for _, q := range queries {
			if _, err := db.ExecContext(ctx, q.Query, q.Args...); err != nil {
				return fmt.Errorf("creating offset of group %s: %w", group, err)
			}
		}
	}

	return nil
}

func newPostgresPublisher(ctx context.Context, cfg config.Config, logger *slog.Logger) (message.Publisher, error) {
	logger = logger.With("backend", "postgres", "broker_url", config.RedactURL(cfg.Postgres.URL))
	db, err := connectPostgres(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := declarePostgresTopology(ctx, db, cfg.Topic, cfg.Groups); err != nil {
		_ = db.Close()

		return nil, err
	}

	pub, err := wmsql.NewPublisher(wmsql.BeginnerFromStdSQL(db), wmsql.PublisherConfig{SchemaAdapter: postgresSchema()}, logging.Watermill(logger))
	if err != nil {
		_ = db.Close()

		return nil, fmt.Errorf("creating PostgreSQL publisher: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "groups", cfg.Groups)

	return publisherCloser{Publisher: pub, after: db.Close}, nil
}

func newPostgresSubscriber(ctx context.Context, cfg config.Config, group string, logger *slog.Logger) (message.Subscriber, error) {
	logger = logger.With("backend", "postgres", "broker_url", config.RedactURL(cfg.Postgres.URL))
	db, err := connectPostgres(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := declarePostgresTopology(ctx, db, cfg.Topic, []string{group}); err != nil {
		_ = db.Close()

		return nil, err
	}

	ackDeadline := cfg.Postgres.AckDeadline
	sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromStdSQL(db), wmsql.SubscriberConfig{
		ConsumerGroup:  group,
		AckDeadline:    &ackDeadline,
		PollInterval:   cfg.Postgres.PollInterval,
		ResendInterval: 100 * time.Millisecond,
		SchemaAdapter:  postgresSchema(),
		OffsetsAdapter: wmsql.DefaultPostgreSQLOffsetsAdapter{},
	}, logging.Watermill(logger))
	if err != nil {
		_ = db.Close()

		return nil, fmt.Errorf("creating PostgreSQL subscriber: %w", err)
	}
	logger.Info("connected to broker", "topic", cfg.Topic, "consumer_group", group)

	return subscriberCloser{Subscriber: sub, after: db.Close}, nil
}
