package config

import (
	"strings"
	"testing"
)

func TestLoadReportsEveryProblemOfFileAndEnvironmentAtOnce(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("t", 200)

	tests := []struct {
		name    string
		file    string
		environ []string
		want    []string
		notWant []string
	}{
		{
			name:    "an unparsable environment value is reported beside invalid values of the rest",
			file:    "log:\n  level: loud\n",
			environ: []string{"MILLRACE_AMQP_PREFETCH=many", "MILLRACE_PUBLISHER_LISTEN=nowhere"},
			want:    []string{"MILLRACE_AMQP_PREFETCH (amqp.prefetch)", "log.level:", "publisher.listen:"},
		},
		{
			name: "a number with a fraction for an integer field is refused, naming the field",
			file: "amqp:\n  prefetch: 2.5\npublisher:\n  max_body_bytes: 1.5\n",
			want: []string{"amqp.prefetch: line 2: 2.5 is not a whole number",
				"publisher.max_body_bytes: line 4: 1.5 is not a whole number"},
		},
		{
			name: "a second YAML document is refused",
			file: "topic: first\n---\ntopic: second\n",
			want: []string{"line 2: holds more than one YAML document"},
		},
		{
			name: "an AMQP topic in RabbitMQ's reserved namespace is refused",
			file: "topic: amq.stuff\n",
			want: []string{`topic: "amq.stuff" starts with "amq."`},
		},
		{
			name: "an AMQP audit topic in RabbitMQ's reserved namespace is refused",
			file: "audit:\n  topic: amq.audit\n",
			want: []string{`audit.topic: "amq.audit" starts with "amq."`},
		},
		{
			name: "a poison queue name longer than AMQP allows is refused, naming topic and group",
			file: "topic: " + long + "\ngroups: [ok, " + strings.Repeat("g", 48) + "]\n",
			want: []string{"topic, groups[1]: the poison queue <topic>.<group>.poison would be 256 bytes " +
				"and AMQP allows 255: shorten topic or groups[1] by 1"},
			notWant: []string{"groups[0]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, _, err := Load(writeFile(t, tt.file), tt.environ)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error mentions %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadAcceptsWhatIsNoProblem(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		file  string
		check func(Config) bool
	}{
		{
			name:  "a whole number written as a float is taken as it is",
			file:  "publisher:\n  max_body_bytes: 2e6\n",
			check: func(c Config) bool { return c.Publisher.MaxBodyBytes == 2_000_000 },
		},
		{
			name: "a poison queue name of exactly 255 bytes is allowed",
			file: "topic: " + strings.Repeat("t", 200) + "\ngroups: [" + strings.Repeat("g", 47) + "]\n",
			check: func(c Config) bool {
				return len(c.Topic)+len(c.Groups[0]) == 247
			},
		},
		{
			name:  "a long topic is fine on a backend that builds no AMQP names",
			file:  "backend: nats\ntopic: " + strings.Repeat("t", 200) + "\ngroups: [" + strings.Repeat("g", 60) + "]\n",
			check: func(c Config) bool { return c.Backend == "nats" },
		},
		{
			name:  "a topic merely containing amq. is allowed",
			file:  "topic: my.amq.stuff\n",
			check: func(c Config) bool { return c.Topic == "my.amq.stuff" },
		},
		{
			name:  "a file opened by a document marker is one document",
			file:  "---\ntopic: marked\n",
			check: func(c Config) bool { return c.Topic == "marked" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			cfg, _, err := Load(writeFile(t, tt.file), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}
