package worker

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/millrace/millrace/pkg/config"
)

// TestRouterStack runs one event through the consumer router stack on the
// in-memory pub/sub: the event it publishes carries the correlation ID, and
// the admin server reports the event and readiness.
func TestRouterStack(t *testing.T) {
	cfg := config.Default()
	logger := slog.New(slog.DiscardHandler)
	pubsub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubsub.Close()

	obs, err := startObserver(cfg, "g", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer obs.stop()
	admin := "http://" + obs.admin.Addr()
	if code, _ := get(t, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before the router runs answered %d, want 503", code)
	}

	router, err := NewRouter(cfg, logger, obs.middleware())
	if err != nil {
		t.Fatal(err)
	}
	obs.watch(router, pubsub)
	router.AddHandler("g", "in", pubsub, "out", pubsub, func(msg *message.Message) ([]*message.Message, error) {
		return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte("derived"))}, nil
	})

	out, err := pubsub.Subscribe(context.Background(), "out")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = router.Run(context.Background()) }()
	defer router.Close()
	<-router.Running()

	in := message.NewMessage(watermill.NewUUID(), []byte("original"))
	middleware.SetCorrelationID("corr-7", in)
	if err := pubsub.Publish("in", in); err != nil {
		t.Fatal(err)
	}

	select {
	case msg := <-out:
		msg.Ack()
		if got := middleware.MessageCorrelationID(msg); got != "corr-7" {
			t.Errorf("the published event's correlation_id = %q, want corr-7", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's event was not published within 10s")
	}

	if code, body := get(t, admin+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with the router running answered %d: %s", code, body)
	}
	want := `millrace_events_handled_total{group="g",instance=`
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, admin+"/metrics")
		if strings.Contains(body, want) && strings.Contains(body, `result="ok",service="g"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count the event as handled ok:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	return resp.StatusCode, string(body)
}
