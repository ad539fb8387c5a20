package brokertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// rabbitServerCandidates are where rabbitmq-server may be. The package's own
// script comes first: the one on PATH in Debian switches to the rabbitmq
// user, which cannot write the test's directories.
var rabbitServerCandidates = []string{"/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server"}

// RabbitNode is a private RabbitMQ node that a test starts, stops and
// restarts at will, on loopback ports of its own, so that fault tests never
// disturb the shared broker other tests use.
type RabbitNode struct {
	t      testing.TB
	server string
	dir    string
	name   string
	port   int
	env    []string

	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRabbitNode starts a private node and stops it when the test ends. It
// skips the test (fails it under CI=true) when rabbitmq-server is missing;
// $MILLRACE_TEST_RABBITMQ_SERVER names the script if it is elsewhere.
func StartRabbitNode(t testing.TB) *RabbitNode {
	t.Helper()
	server, err := findRabbitServer()
	if err != nil {
		msg := "a private RabbitMQ node needs rabbitmq-server: " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	dir, err := os.MkdirTemp("", "millrace-rabbit-")
	if err != nil {
		t.Fatalf("creating node directory: %v", err)
	}
	port, dist := freePort(t), freePort(t)
	n := &RabbitNode{
		t:      t,
		server: server,
		dir:    dir,
		name:   "millrace-test-" + uuid.NewString()[:8] + "@localhost",
		port:   port,
	}
	conf := filepath.Join(dir, "rabbitmq.conf")
	body := fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\nloopback_users = none\n", port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("writing node config: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[].\n"), 0o600); err != nil {
		t.Fatalf("writing node plugins: %v", err)
	}
	n.env = append(os.Environ(),
		"HOME="+dir,
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(dist),
		"RABBITMQ_CONFIG_FILE="+conf,
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_PID_FILE="+filepath.Join(dir, "pid"),
	)
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("private RabbitMQ node files kept in %s", dir)

			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing the node's files: %v", err)
		}
	})
	n.Start()

	return n
}

func findRabbitServer() (string, error) {
	candidates := rabbitServerCandidates
	if s := os.Getenv("MILLRACE_TEST_RABBITMQ_SERVER"); s != "" {
		candidates = []string{s}
	}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}

	return "", fmt.Errorf("none of %v found", candidates)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()

	return ln.Addr().(*net.TCPAddr).Port
}

// URL is the node's AMQP URL.
func (n *RabbitNode) URL() string {
	return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port)
}

// Start boots the node, keeping what it stored before, and returns once it
// accepts AMQP connections (at most 90s).
func (n *RabbitNode) Start() {
	n.t.Helper()
	out, err := os.OpenFile(filepath.Join(n.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.t.Fatalf("opening node output: %v", err)
	}
	defer out.Close()

	cmd := exec.Command(n.server)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = n.dir, n.env, out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("starting rabbitmq-server: %v", err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(n.exited)

	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := amqp091.Dial(n.URL())
		if err == nil {
			_ = conn.Close()

			return
		}
		select {
		case <-n.exited:
			n.t.Fatalf("rabbitmq-server exited while starting; see %s", filepath.Join(n.dir, "server.out"))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("private RabbitMQ node not accepting connections after 90s: %v", err)
		}
	}
}

// Stop shuts the node down cleanly (SIGTERM, as an operator's stop would)
// and returns once it has exited; after 60s it kills it.
func (n *RabbitNode) Stop() {
	if n.cmd == nil {
		return
	}
	pgid := n.cmd.Process.Pid
	// The Erlang VM stops gracefully on SIGTERM; the script that started it
	// exits after it. The VM writes its PID to the pid file once booted.
	if raw, err := os.ReadFile(filepath.Join(n.dir, "pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	} else {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
	// The listener may linger for a moment after the process group exits.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)), time.Second)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if conn != nil {
			_ = conn.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
}
