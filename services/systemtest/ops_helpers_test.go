package systemtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// opsBuild builds the three services into a directory of the test's.
func opsBuild(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./services/publisher", "./services/consumer", "./services/extraspecialconsumer")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the services: %v\n%s", err, out)
	}

	return dir
}

// opsEnv is the environment of a service under test: no MILLRACE_* from
// outside, JSON logs at Debug, loopback ports chosen by the system.
func opsEnv(topic, amqpURL string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MILLRACE_") {
			env = append(env, kv)
		}
	}

	return append(append(env,
		"MILLRACE_TOPIC="+topic,
		"MILLRACE_AMQP_URL="+amqpURL,
		"MILLRACE_LOG_FORMAT=json",
		"MILLRACE_LOG_LEVEL=debug",
		"MILLRACE_PUBLISHER_LISTEN=127.0.0.1:0",
		"MILLRACE_CONSUMER_ADMIN_LISTEN=127.0.0.1:0",
	), extra...)
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()

	return b.buf.String()
}

// opsProc is one running service instance.
type opsProc struct {
	name   string
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
}

// opsStart runs bin/service with env; it is stopped with SIGTERM when the test ends.
func opsStart(t *testing.T, bin, service string, env []string) *opsProc {
	t.Helper()
	p := &opsProc{name: service, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	p.cmd = exec.Command(filepath.Join(bin, service))
	p.cmd.Dir = t.TempDir() // no configs/default.yaml: built-in defaults + env
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", service, err)
	}

	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s (pid %d) exited with %v; stderr:\n%s", service, p.cmd.Process.Pid, err, p.stderr)
			}
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
			t.Errorf("%s (pid %d) did not stop within 30s of SIGTERM", service, p.cmd.Process.Pid)
		}
	})

	return p
}

// records parses every stderr line as a JSON object; a line that is not
// one fails the test.
func (p *opsProc) records(t *testing.T) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%s wrote a log line that is not JSON (%v): %s", p.name, err, sc.Text())
		}
		recs = append(recs, rec)
	}

	return recs
}

// waitRecord polls the logs for the first record for which match is true.
func (p *opsProc) waitRecord(
	t *testing.T,
	timeout time.Duration,
	what string,
	match func(map[string]any) bool,
) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, rec := range p.records(t) {
			if match(rec) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged no %s within %s; stderr:\n%s", p.name, what, timeout, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// address waits for the log line msg and returns its address as a URL.
func (p *opsProc) address(t *testing.T, msg string) string {
	t.Helper()
	rec := p.waitRecord(t, 40*time.Second, msg, func(r map[string]any) bool { return r["msg"] == msg })
	addr, _ := rec["address"].(string)

	return "http://" + addr
}

// opsGet answers the status and body of GET url.
func opsGet(url string) (int, string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)

	return resp.StatusCode, string(body), err
}

// waitStatus polls GET url until it answers want.
func waitStatus(t *testing.T, url string, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		code, body, err := opsGet(url)
		if err == nil && code == want {
			return time.Since(start)
		}
		last = strings.TrimSpace(body)
		if err != nil {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s did not answer %d within %s; last answer: %s", url, want, timeout, last)

	return 0
}

// scrape reads url's /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := opsGet(url + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("scraping %s/metrics: status %d, %v", url, code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s/metrics is not the Prometheus text format: %v", url, err)
	}

	return families
}

// sample sums, over every series of the family name whose labels include
// want, the counter value or the histogram's sample count.
func sample(families map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	mf, ok := families[name]
	if !ok {
		return 0
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}

	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}

	return true
}

// opsProxy is a loopback TCP proxy to the broker that the test can cut
// (dropping every connection and refusing new ones) and restore, to take the
// broker away from the services without touching the shared broker.
type opsProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *opsProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &opsProxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.Cut()
	})

	return p
}

func (p *opsProxy) Addr() string { return p.ln.Addr().String() }

func (p *opsProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go p.pipe(c)
	}
}

func (p *opsProxy) pipe(client net.Conn) {
	p.mu.Lock()
	cut := p.cut
	p.mu.Unlock()
	if cut {
		_ = client.Close()

		return
	}

	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()

		return
	}
	if !p.track(client, server) {
		return
	}

	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
	p.untrack(client, server)
}

// track registers a live pair, or closes it if the proxy was cut meanwhile.
func (p *opsProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range conns {
			_ = c.Close()
		}

		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}

	return true
}

func (p *opsProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// Cut drops every connection through the proxy and refuses new ones.
func (p *opsProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// Restore lets connections through again.
func (p *opsProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// histogramSum adds up the sum of every series of a histogram family.
func histogramSum(families map[string]*dto.MetricFamily, name string) float64 {
	var sum float64
	for _, m := range families[name].GetMetric() {
		sum += m.GetHistogram().GetSampleSum()
	}

	return sum
}
