package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// services are the binaries the bench runs, as a user runs them.
var services = []string{"publisher", "consumer", "extraspecialconsumer"}

// buildServices compiles the services of the module at repo into dir.
func buildServices(ctx context.Context, repo, dir string) error {
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, s := range services {
		args = append(args, "./services/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the services: %w\n%s", err, out)
	}

	return nil
}

// proc is one running service instance. Its stdout lines go to onLine as
// they arrive; its stderr is kept for when it fails.
type proc struct {
	name string
	cmd  *exec.Cmd

	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// startProc runs binary from repo (so it reads configs/default.yaml) with
// env added to the bench's environment.
func startProc(name, binary, repo string, env []string, onLine func(line []byte, at time.Time)) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Dir = repo
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()

		return p.stderr.Write(b)
	})
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}

	go func() {
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 && onLine != nil {
				onLine(line, time.Now())
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		close(p.done)
	}()

	return p, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()

	return p.stderr.String()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the instance to shut down as a user's Ctrl-C would and kills it
// if it has not exited within timeout.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return p.err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done

		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.name, timeout)
	}
}

// waitFor polls until cond holds, the instance exits or timeout passes.
func (p *proc) waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if p.exited() {
			return fmt.Errorf("%s exited before %s: %v\n%s", p.name, what, p.err, p.stderrText())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s within %s\n%s", p.name, what, timeout, p.stderrText())
		}
		time.Sleep(50 * time.Millisecond)
	}

	return nil
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()

	return ln.Addr().String(), nil
}

// usage is what the kernel counts for one process: CPU time so far and
// resident memory now and at its peak.
type usage struct {
	cpu      time.Duration
	rss, hwm int64
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat.
//
// Warning: it is 100 on every Linux architecture Go supports in practice,
// but it is not read from sysconf (Go has no portable call for it); on a
// kernel built otherwise the CPU figures are off by that factor.
const clockTicks = 100

// readUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func readUsage(pid int) (usage, error) {
	var u usage
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return u, fmt.Errorf("reading CPU time of %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	fields := strings.Fields(string(rest))
	if len(fields) < 13 {
		return u, fmt.Errorf("reading CPU time of %d: short /proc stat line", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	u.cpu = time.Duration(utime+stime) * time.Second / clockTicks

	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return u, fmt.Errorf("reading memory of %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "VmRSS":
			u.rss = kb << 10
		case "VmHWM":
			u.hwm = kb << 10
		}
	}

	return u, nil
}

// findBroker returns the PID of the process listening on the TCP port of
// amqpURL on this machine (the RabbitMQ node), or 0 when it cannot be told:
// several RabbitMQ nodes may run here, so the listening socket decides.
func findBroker(amqpURL string) int {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return 0
	}
	port, err := strconv.ParseUint(cmp.Or(u.Port(), "5672"), 10, 16)
	if err != nil {
		return 0
	}
	inode := listeningInode(port)
	if inode == "" {
		return 0
	}
	target := "socket:[" + inode + "]"
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && link == target {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])

			return pid
		}
	}

	return 0
}

// listeningInode finds the socket inode listening on port in /proc/net/tcp*.
func listeningInode(port uint64) string {
	want := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			// local_address is f[1], st is f[3] (0A = LISTEN), inode is f[9].
			if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
				return f[9]
			}
		}
	}

	return ""
}
