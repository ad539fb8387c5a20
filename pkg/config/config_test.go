package config

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultFileSpellsOutTheBuiltInDefaults(t *testing.T) {
	t.Parallel()
	var fromFile Config
	if err := readFile(filepath.Join("..", "..", DefaultFile), &fromFile); err != nil {
		t.Fatal(err)
	}

	if !reflect.DeepEqual(fromFile, Default()) {
		t.Errorf("configs/default.yaml and Default() disagree:\nfile:    %+v\ndefault: %+v", fromFile, Default())
	}
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadLayersFileThenEnvironmentOverDefaults(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "topic: from-file\npublisher:\n  listen: 127.0.0.1:9000\n")

	cfg, file, err := Load(path, []string{
		"MILLRACE_PUBLISHER_LISTEN=127.0.0.1:9100",
		"MILLRACE_GROUPS=a, b,c",
		"MILLRACE_CONSUMER_RETRY_INITIAL_INTERVAL=250ms",
		"MILLRACE_AMQP_PREFETCH=4",
		"UNRELATED=ignored",
	})
	if err != nil {
		t.Fatal(err)
	}

	if file != path {
		t.Errorf("file = %q, want %q", file, path)
	}
	if cfg.Topic != "from-file" {
		t.Errorf("topic = %q, want the file's value", cfg.Topic)
	}
	if cfg.Publisher.Listen != "127.0.0.1:9100" {
		t.Errorf("publisher.listen = %q, want the environment's value", cfg.Publisher.Listen)
	}
	if !reflect.DeepEqual(cfg.Groups, []string{"a", "b", "c"}) {
		t.Errorf("groups = %q, want [a b c]", cfg.Groups)
	}
	if cfg.Consumer.Retry.InitialInterval != 250*time.Millisecond {
		t.Errorf("consumer.retry.initial_interval = %s, want 250ms", cfg.Consumer.Retry.InitialInterval)
	}
	if cfg.AMQP.Prefetch != 4 {
		t.Errorf("amqp.prefetch = %d, want 4", cfg.AMQP.Prefetch)
	}
	if cfg.AMQP.URL != Default().AMQP.URL {
		t.Errorf("amqp.url = %q, want the default", cfg.AMQP.URL)
	}
}

func TestLoadReadsTheFileNamedByTheEnvironment(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "topic: named-by-env\n")

	cfg, _, err := Load("", []string{EnvFile + "=" + path})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Topic != "named-by-env" {
		t.Errorf("topic = %q, want named-by-env", cfg.Topic)
	}
}

func TestLoadRejectsWhatItCannotUse(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string
	}{
		{
			name: "a missing file named explicitly",
			file: "<missing>",
			want: []string{"does not exist"},
		},
		{
			name: "an unknown key in the file",
			file: "topic: t\namqp:\n  uri: amqp://x\n",
			want: []string{"field uri not found"},
		},
		{
			name:    "unparsable and unknown environment values, all at once",
			environ: []string{"MILLRACE_AMQP_PREFETCH=many", "MILLRACE_PUBLISHER_PUBLISH_TIMEOUT=5", "MILLRACE_NOPE=1"},
			want: []string{
				"MILLRACE_AMQP_PREFETCH (amqp.prefetch)", "not a whole number",
				"MILLRACE_PUBLISHER_PUBLISH_TIMEOUT (publisher.publish_timeout)", "not a duration",
				"MILLRACE_NOPE: unknown setting",
			},
		},
		{
			name: "invalid values, every one named by its field",
			file: "backend: kafka\ntopic: 'a b'\ngroups: [x, x]\namqp:\n  url: http://nope\n  prefetch: 0\n" +
				"publisher:\n  listen: nowhere\n  publish_timeout: 0s\nlog:\n  level: loud\n  format: xml\n",
			want: []string{
				`backend: "kafka" is not supported (valid: amqp, nats, redis, postgres, gochannel)`,
				"topic:",
				`groups[1]: "x" is listed twice`,
				"publisher.listen:",
				"publisher.publish_timeout:",
				"log.level:",
				"log.format:",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			switch tt.file {
			case "":
			case "<missing>":
				path = filepath.Join(t.TempDir(), "missing.yaml")
			default:
				path = writeFile(t, tt.file)
			}

			_, _, err := Load(path, tt.environ)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestAMQPSettingsAreCheckedForTheAMQPBackend(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.AMQP.URL = "http://localhost"
	cfg.AMQP.Prefetch = 0

	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate succeeded, want an error")
	}
	for _, w := range []string{"amqp.url:", "amqp.prefetch:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
}

func TestTheLoggedConfigurationMasksThePassword(t *testing.T) {
	t.Parallel()
	cfg := Default()
	cfg.AMQP.URL = "amqps://app:s3cret@broker.example:5671/vhost"

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("starting", "config", cfg)

	if strings.Contains(buf.String(), "s3cret") {
		t.Errorf("log line carries the password: %s", buf.String())
	}
	for _, want := range []string{`"amqp.url":"amqps://app:xxxxx@broker.example:5671/vhost"`, `"publisher.listen":"127.0.0.1:8000"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line lacks %s: %s", want, buf.String())
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	return path
}
