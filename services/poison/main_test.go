package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
	"github.com/millrace/millrace/pkg/config"
)

func TestListThenReplayAParkedEvent(t *testing.T) {
	url := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, url, topic, broker.QueueName(topic, "g"), broker.PoisonQueue(topic, "g"))
	environ := []string{"MILLRACE_AMQP_URL=" + url, "MILLRACE_TOPIC=" + topic, "MILLRACE_GROUPS=g"}
	cfg, _, err := config.Load("", environ)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)

	// The group's queue, and one event parked in its poison queue.
	pub, err := broker.NewPublisher(t.Context(), cfg, logger)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	_ = pub.Close()
	poison, err := broker.NewPoisonPublisher(t.Context(), cfg, "g", logger)
	if err != nil {
		t.Fatalf("NewPoisonPublisher: %v", err)
	}
	defer poison.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	msg := message.NewMessage("parked-1", []byte("café\r\n"))
	msg.Metadata.Set(broker.MetaPoisonReason, "boom")
	msg.Metadata.Set(broker.MetaPoisonAttempts, "4")
	msg.Metadata.Set(broker.MetaPoisonHandler, "g")
	msg.SetContext(ctx)
	if err := poison.Publish(broker.PoisonQueue(topic, "g"), msg); err != nil {
		t.Fatalf("parking: %v", err)
	}

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "listing shows the event and leaves it parked", args: []string{"-group", "g"},
			want: []string{"parked-1 attempts=4 handler=g", `reason="boom"`, `body="café\r\n"`, "1 event(s) parked"}},
		{name: "listing again still shows it", args: []string{"-group", "g"}, want: []string{"1 event(s) parked"}},
		{name: "replay moves it back", args: []string{"-group", "g", "-replay"},
			want: []string{"replayed parked-1 into " + broker.QueueName(topic, "g")}},
		{name: "nothing is left to replay", args: []string{"-group", "g", "-replay"}, want: []string{"is empty"}},
		{name: "nothing is left to list", args: []string{"-group", "g"}, want: []string{"0 event(s) parked"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if err := run(ctx, tt.args, environ, &stdout, &stderr); err != nil {
			t.Fatalf("%s: %v (%s)", tt.name, err, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%s: output %q lacks %q", tt.name, stdout.String(), w)
			}
		}
	}
}
