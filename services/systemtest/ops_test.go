// Package systemtest runs the built services together against a real broker.
package systemtest

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/millrace/millrace/pkg/brokertest"
)

// opsTypes are the consumer service types, each run as two instances.
var opsTypes = []string{"consumer", "extraspecialconsumer"}

// opsCluster is a publisher and two instances of each consumer type on a
// topic of their own, logging JSON at Debug.
type opsCluster struct {
	publisher    *opsProc
	publisherURL string
	consumers    map[string][]*opsProc // by type
	adminURLs    map[string][]string   // by type
}

func startOpsCluster(t *testing.T) *opsCluster {
	t.Helper()
	amqpURL := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, amqpURL, topic, topic+".consumer", topic+".extraspecialconsumer")
	bin := opsBuild(t)
	env := opsEnv(topic, amqpURL)

	c := &opsCluster{consumers: map[string][]*opsProc{}, adminURLs: map[string][]string{}}
	c.publisher = opsStart(t, bin, "publisher", env)
	for _, typ := range opsTypes {
		for range 2 {
			c.consumers[typ] = append(c.consumers[typ], opsStart(t, bin, typ, env))
		}
	}

	c.publisherURL = c.publisher.address(t, "accepting requests")
	waitStatus(t, c.publisherURL+"/readyz", http.StatusOK, 40*time.Second)
	for _, typ := range opsTypes {
		for _, p := range c.consumers[typ] {
			u := p.address(t, "serving admin HTTP")
			waitStatus(t, u+"/readyz", http.StatusOK, 40*time.Second)
			c.adminURLs[typ] = append(c.adminURLs[typ], u)
		}
	}

	return c
}

// post sends body with the given headers and returns the response.
func (c *opsCluster) post(t *testing.T, body string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.publisherURL+"/stuff", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /stuff: %v", err)
	}
	_ = resp.Body.Close()

	return resp
}

// handled sums a consumer type's metric over its instances.
func (c *opsCluster) sum(t *testing.T, typ, name string, labels map[string]string) float64 {
	t.Helper()
	var total float64
	for _, u := range c.adminURLs[typ] {
		total += sample(scrape(t, u), name, labels)
	}

	return total
}

func TestOperatingTheServices(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built services against a broker; not in -short")
	}
	c := startOpsCluster(t)

	t.Run("metrics count every event once per type, with an end-to-end latency sample each", func(t *testing.T) {
		const n = 20
		for i := range n {
			resp := c.post(t, fmt.Sprintf("metrics event %d", i), http.Header{})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST %d: status %d", i, resp.StatusCode)
			}
		}

		ok := map[string]string{"result": "ok"}
		for _, typ := range opsTypes {
			deadline := time.Now().Add(30 * time.Second)
			for c.sum(t, typ, "millrace_events_handled_total", ok) < n && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			handled := c.sum(t, typ, "millrace_events_handled_total", ok)
			if handled != n {
				t.Errorf("%s: millrace_events_handled_total{result=ok} sums to %v over its instances, want %d", typ, handled, n)
			}
			e2e := c.sum(t, typ, "millrace_event_end_to_end_seconds", map[string]string{"group": typ})
			if e2e != n {
				t.Errorf("%s: millrace_event_end_to_end_seconds has %v samples, want %d", typ, e2e, n)
			}
			if got := c.sum(t, typ, "millrace_handler_execution_time_seconds", nil); got != n {
				t.Errorf("%s: millrace_handler_execution_time_seconds has %v samples, want %d", typ, got, n)
			}
			var seconds float64
			for _, u := range c.adminURLs[typ] {
				seconds += histogramSum(scrape(t, u), "millrace_event_end_to_end_seconds")
			}
			t.Logf("%s: %v events handled, %v end-to-end samples over %d instances, mean end-to-end %.1f ms",
				typ, handled, e2e, len(c.adminURLs[typ]), seconds/e2e*1000)
		}

		pub := scrape(t, c.publisherURL)
		stuffOK := map[string]string{"route": "/stuff", "code": "200", "method": "POST"}
		if got := sample(pub, "millrace_http_requests_total", stuffOK); got != n {
			t.Errorf("publisher: millrace_http_requests_total{route=/stuff,code=200} = %v, want %d", got, n)
		}
		if got := sample(pub, "millrace_http_request_duration_seconds", map[string]string{"route": "/stuff"}); got != n {
			t.Errorf("publisher: millrace_http_request_duration_seconds has %v samples, want %d", got, n)
		}
		if got := sample(pub, "millrace_publish_time_seconds", map[string]string{"success": "true"}); got != n {
			t.Errorf("publisher: millrace_publish_time_seconds{success=true} has %v samples, want %d", got, n)
		}
	})

	t.Run("a correlation ID sent in the request is answered and logged by every type", func(t *testing.T) {
		tests := []struct {
			name   string
			header string
		}{
			{name: "sent as X-Request-ID", header: "X-Request-ID"},
			{name: "sent as X-Correlation-ID", header: "X-Correlation-ID"},
			{name: "not sent, so the publisher makes one", header: ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				header := http.Header{}
				sent := "trace-" + uuid.NewString()
				if tt.header != "" {
					header.Set(tt.header, sent)
				}
				resp := c.post(t, "correlated "+sent, header)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}

				id := resp.Header.Get("X-Request-ID")
				switch {
				case tt.header == "" && uuid.Validate(id) != nil:
					t.Fatalf("X-Request-ID in the response = %q, want a fresh UUID", id)
				case tt.header != "" && id != sent:
					t.Fatalf("X-Request-ID in the response = %q, want %q", id, sent)
				case tt.header != "" && resp.Header.Get(tt.header) != sent:
					t.Fatalf("%s in the response = %q, want %q", tt.header, resp.Header.Get(tt.header), sent)
				}

				withID := func(msg string) func(map[string]any) bool {
					return func(r map[string]any) bool { return r["msg"] == msg && r["correlation_id"] == id }
				}
				req := c.publisher.waitRecord(t, 10*time.Second, "request line with the ID", withID("request"))
				eventID := req["event_id"]
				for _, typ := range opsTypes {
					rec := waitAny(t, c.consumers[typ], "event handled", withID("event handled"))
					if rec["event_id"] != eventID || rec["message_uuid"] != eventID {
						t.Errorf("%s logged event_id %v / message_uuid %v for correlation ID %s, publisher logged %v",
							typ, rec["event_id"], rec["message_uuid"], id, eventID)
					}
					for _, key := range []string{"topic", "handler_name", "delivery_attempt"} {
						if rec[key] == nil || rec[key] == "" {
							t.Errorf("%s's event handled line has no %s: %v", typ, key, rec)
						}
					}
				}
			})
		}
	})

	t.Run("a malformed correlation ID is refused with 400", func(t *testing.T) {
		header := http.Header{}
		header.Set("X-Request-ID", strings.Repeat("x", 129))
		if resp := c.post(t, "never published", header); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})

	t.Run("every log line is JSON with service and instance, and the seed's line stays on stdout", func(t *testing.T) {
		all := append([]*opsProc{c.publisher}, append(c.consumers["consumer"], c.consumers["extraspecialconsumer"]...)...)
		seed := map[string]*regexp.Regexp{
			"consumer":             regexp.MustCompile(`^Consumer \(Instance: (\d+)\) received: .+$`),
			"extraspecialconsumer": regexp.MustCompile(`^Extra Special Consumer \(Instance: (\d+)\) received: .+$`),
		}
		for _, p := range all {
			pid := strconv.Itoa(p.cmd.Process.Pid)
			recs := p.records(t)
			if len(recs) == 0 {
				t.Errorf("%s logged nothing", p.name)
			}
			for _, rec := range recs {
				if rec["service"] != p.name || fmt.Sprint(rec["instance"]) != pid {
					t.Fatalf("%s (pid %s) logged service=%v instance=%v: %v", p.name, pid, rec["service"], rec["instance"], rec)
				}
			}
			if re := seed[p.name]; re != nil {
				for line := range strings.Lines(p.stdout.String()) {
					m := re.FindStringSubmatch(strings.TrimSuffix(line, "\n"))
					if m == nil || m[1] != pid {
						t.Errorf("%s (pid %s) printed %q, not the seed's line", p.name, pid, line)
					}
				}
			}
		}
	})
}

// waitAny polls several instances' logs for a record; exactly one instance
// of a type handles each event, and the test does not know which.
func waitAny(t *testing.T, procs []*opsProc, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range procs {
			for _, rec := range p.records(t) {
				if match(rec) {
					return rec
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s instance logged %s within 15s", procs[0].name, what)

	return nil
}

func TestReadinessFollowsTheBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built services against a broker; not in -short")
	}
	amqpURL := brokertest.RequireAMQP(t)
	topic := brokertest.Topic(t)
	brokertest.DeleteAMQPTopology(t, amqpURL, topic, topic+".consumer")

	broker, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, broker.Host)
	viaProxy := *broker
	viaProxy.Host = proxy.Addr()

	bin := opsBuild(t)
	env := opsEnv(topic, viaProxy.String(), "MILLRACE_GROUPS=consumer")
	pub := opsStart(t, bin, "publisher", env)
	con := opsStart(t, bin, "consumer", env)
	services := map[string]string{
		"publisher": pub.address(t, "accepting requests"),
		"consumer":  con.address(t, "serving admin HTTP"),
	}
	for _, u := range services {
		waitStatus(t, u+"/readyz", http.StatusOK, 40*time.Second)
	}

	proxy.Cut()
	for name, u := range services {
		took := waitStatus(t, u+"/readyz", http.StatusServiceUnavailable, 10*time.Second)
		t.Logf("%s: /readyz failed %s after the broker went away", name, took.Round(time.Millisecond))
		if code, _, err := opsGet(u + "/healthz"); err != nil || code != http.StatusOK {
			t.Errorf("%s: /healthz answered %d, %v while the broker is away; want 200", name, code, err)
		}
	}

	proxy.Restore()
	for name, u := range services {
		took := waitStatus(t, u+"/readyz", http.StatusOK, 40*time.Second)
		t.Logf("%s: /readyz passed %s after the broker came back", name, took.Round(time.Millisecond))
	}

	// Ready means working: an event posted now reaches the consumer.
	resp, err := http.Post(services["publisher"]+"/stuff", "text/plain", strings.NewReader("after the outage"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST after reconnect: status %d", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(con.stdout.String(), "received: after the outage") {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer did not handle the event posted after reconnect; stderr:\n%s", con.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
