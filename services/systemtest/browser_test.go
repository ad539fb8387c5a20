package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/millrace/millrace/pkg/broker"
	"github.com/millrace/millrace/pkg/brokertest"
)

// ScreenshotFile is where the browser test saves what the page looked like,
// relative to the repository root (ignored by git).
const ScreenshotFile = "artifacts/live-page.png"

// TestTheLivePageShowsEachEventHandledByOneInstanceOfEachType starts
// `go tool task run-all`, opens the live page in headless Chromium, posts
// through the page's form and checks that the page shows each event handled
// by exactly one Consumer and one Extra Special Consumer instance. The delivery
// audit, listening meanwhile, must agree.
func TestTheLivePageShowsEachEventHandledByOneInstanceOfEachType(t *testing.T) {
	amqpURL := brokertest.RequireAMQP(t)
	chromium := requireChromium(t)
	if binDir == "" {
		t.Skip("system tests do not run with -short")
	}
	topic := brokertest.Topic(t)
	groups := []string{"consumer", "extraspecialconsumer"}
	brokertest.DeleteAMQPTopology(t, amqpURL, topic,
		broker.QueueName(topic, groups[0]), broker.QueueName(topic, groups[1]))
	addr := freeAddr(t)
	env := []string{
		"MILLRACE_AMQP_URL=" + amqpURL,
		"MILLRACE_TOPIC=" + topic,
		"MILLRACE_PUBLISHER_LISTEN=" + addr,
	}

	bodies := []string{"Hello World", "Hello Jack", "Hello from the browser " + topic[len(topic)-8:]}
	auditor := startAudit(t, len(bodies), env...)
	runAll := startRunAll(t, env)
	for _, group := range groups {
		queue := broker.QueueName(topic, group)
		eventually(t, 2*time.Minute, "2 consumers on "+queue, func() bool {
			n, err := consumerCount(amqpURL, queue)

			return err == nil && n == 2
		})
	}

	ctx := newBrowser(t, chromium)
	page := "http://" + addr + "/"
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1100, 640),
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#send")),
	); err != nil {
		t.Fatalf("opening %s: %v", page, err)
	}
	// The page has its stream once it shows the topic.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.getElementById("feed").textContent.startsWith("live")`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page never connected to its live feed: %v", err)
	}

	for _, body := range bodies {
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS("#text"), body),
			chromedp.Click(chromedp.CSS("#send button")),
		); err != nil {
			t.Fatalf("posting %q through the form: %v", body, err)
		}
		handlers := waitHandledOnce(t, ctx, body, groups)
		t.Logf("%q handled by %v", body, handlers)
	}

	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("taking the screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(repoRoot, filepath.Dir(ScreenshotFile)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot, ScreenshotFile), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot saved to %s", ScreenshotFile)

	requireCleanAudit(t, auditor)

	// Ctrl-C with the page still open: its stream must not hold up shutdown.
	_ = syscall.Kill(-runAll.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-runAll.done:
		if runAll.err != nil {
			t.Errorf("run-all exited with %v after Ctrl-C, want a clean exit:\n%s", runAll.err, runAll.stderrText())
		}
	case <-time.After(time.Minute):
		t.Fatal("run-all did not stop within a minute of Ctrl-C with the page open")
	}
}

// waitHandledOnce waits until the page's row for body shows it handled by
// each group, then checks it was handled once, by one instance, per group.
func waitHandledOnce(t *testing.T, ctx context.Context, body string, groups []string) map[string]string {
	t.Helper()
	quoted, _ := json.Marshal(body)
	row := fmt.Sprintf(`[...document.querySelectorAll("tr.event")].find((r) => r.dataset.body === %s)`, quoted)
	done := fmt.Sprintf(`(() => { const row = %s; if (!row) return false;
		const cells = [...row.querySelectorAll("td[data-group]")];
		return cells.length === %d && cells.every((c) => c.dataset.status !== "waiting"); })()`, row, len(groups))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](done, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the page never showed %q handled by every type: %v", body, err)
	}

	type cell struct {
		Group, Status, Handled, Text string
	}
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]cell](fmt.Sprintf(
		`[...%s.querySelectorAll("td[data-group]")].map((c) => ({Group: c.dataset.group,
			Status: c.dataset.status, Handled: c.dataset.handled, Text: c.textContent}))`, row)))
	if err != nil {
		t.Fatalf("reading the row of %q: %v", body, err)
	}
	handlers := map[string]string{}
	for i, c := range cells {
		if c.Group != groups[i] || c.Status != "ok" || c.Handled != "1" {
			t.Errorf("%q for %s: status %s, handled %s times (%q); want ok, once", body, c.Group, c.Status, c.Handled, c.Text)
		}
		handlers[c.Group] = c.Text
	}

	return handlers
}

// requireChromium returns the path of the system Chromium, or skips (fails
// under CI=true) when it is not installed.
func requireChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	msg := "Chromium is not installed (apt-get install chromium); the browser test needs it"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)

	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, closed when
// the test ends.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}

	return ctx
}

// startRunAll runs `go tool task run-all` as the README says, in its own
// process group so that the interrupt reaches every instance, and waits for
// the publisher to answer.
func startRunAll(t *testing.T, env []string) *process {
	t.Helper()
	cmd := exec.Command("go", "tool", "task", "run-all")
	cmd.Dir = repoRoot
	cmd.Env = append(append(os.Environ(), "RUN_ALL_ADMIN_PORTS="+freeAdminPorts(t)), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	runAll := run(t, "run-all", cmd)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) })

	var addr string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "MILLRACE_PUBLISHER_LISTEN="); ok {
			addr = v
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	eventually(t, 2*time.Minute, "the publisher to serve the page", func() bool {
		select {
		case <-runAll.done:
			t.Fatalf("run-all exited early (%v):\n%s", runAll.err, runAll.stderrText())
		default:
		}
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()

		return resp.StatusCode == http.StatusOK
	})

	return runAll
}
