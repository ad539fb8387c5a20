// Package systemtest runs the built services together, as separate processes,
// against a real broker, and checks what a user would see.
package systemtest

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
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
)

// repoRoot is where services run from, so they read configs/default.yaml as
// they do for a user.
var repoRoot, _ = filepath.Abs(filepath.Join("..", ".."))

// binDir holds the services built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}

	dir, err := os.MkdirTemp("", "millrace-systemtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)

		return 1
	}
	defer os.RemoveAll(dir)

	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"./services/publisher", "./services/consumer", "./services/extraspecialconsumer", "./services/audit")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the services: %v\n%s", err, out)

		return 1
	}
	binDir = dir

	return m.Run()
}

// process is one running service instance.
type process struct {
	name string
	cmd  *exec.Cmd

	mu     sync.Mutex
	stdout []string
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// start runs the service binary with env added to this test's environment.
// It is stopped with SIGTERM when the test ends, if still running.
func start(t *testing.T, name, binary string, env ...string) *process {
	t.Helper()
	if binDir == "" {
		t.Skip("system tests do not run with -short")
	}

	cmd := exec.Command(filepath.Join(binDir, binary))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)

	return run(t, name, cmd)
}

func run(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}

	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
		}
		p.err = cmd.Wait()
		close(p.done)
	}()

	t.Cleanup(func() {
		p.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, p.stderrText())
		}
	})

	return p
}

// stop sends sig and waits for the process to exit, returning its error.
func (p *process) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	default:
	}

	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(40 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not stop within 40s of %s", p.name, sig)

		return p.err
	}
}

func (p *process) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()

	return append([]string(nil), p.stdout...)
}

func (p *process) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.w.Write(b)
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	return addr
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// post sends body to POST /stuff and returns the status and response body.
func post(client *http.Client, addr, body string) (int, string, error) {
	resp, err := client.Post("http://"+addr+"/stuff", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)

	return resp.StatusCode, string(b), err
}
