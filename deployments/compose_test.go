package deployments_test

import (
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/millrace/millrace/pkg/config"
)

// millraceServices are the Compose services that run the millrace image,
// with the replicas each must have.
var millraceServices = map[string]int{"publisher": 1, "consumer": 2, "extraspecialconsumer": 2}

// loadCompose loads and validates the Compose files as docker compose would,
// with env as the only environment.
func loadCompose(t *testing.T, env map[string]string, files ...string) *types.Project {
	t.Helper()
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithName("millrace"),
		cli.WithWorkingDirectory("."),
		cli.WithEnv(environ),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("loading %v: %v", files, err)
	}

	return project
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}

	return s
}

func TestComposeFile(t *testing.T) {
	p := loadCompose(t, nil, "docker-compose.yml")

	if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got,
		[]string{"consumer", "extraspecialconsumer", "publisher", "rabbitmq"}) {
		t.Fatalf("services = %v", got)
	}

	t.Run("rabbitmq is a pinned management image with a healthcheck", func(t *testing.T) {
		rmq := service(t, p, "rabbitmq")
		if !regexp.MustCompile(`^rabbitmq:\d+\.\d+\.\d+-management$`).MatchString(rmq.Image) {
			t.Errorf("image %q is not a pinned rabbitmq:X.Y.Z-management", rmq.Image)
		}
		if rmq.HealthCheck == nil || len(rmq.HealthCheck.Test) < 2 || rmq.HealthCheck.Disable {
			t.Fatalf("healthcheck = %+v, want a command", rmq.HealthCheck)
		}
		if !slices.Contains(rmq.HealthCheck.Test, "rabbitmq-diagnostics") {
			t.Errorf("healthcheck %v does not ask rabbitmq-diagnostics", rmq.HealthCheck.Test)
		}
		if rmq.Environment["RABBITMQ_DEFAULT_USER"] == nil || *rmq.Environment["RABBITMQ_DEFAULT_USER"] == "guest" {
			t.Error("the broker needs a user other than guest, which may only log in from localhost")
		}
	})

	t.Run("every port is bound to loopback on the host", func(t *testing.T) {
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes port %d on %q, want 127.0.0.1", name, port.Target, port.HostIP)
				}
			}
		}
	})

	for name, replicas := range millraceServices {
		t.Run(name+" runs the millrace image as configured", func(t *testing.T) {
			s := service(t, p, name)
			checkMillraceService(t, s, replicas)
			if dep, ok := s.DependsOn["rabbitmq"]; !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("depends_on = %+v, want rabbitmq service_healthy", s.DependsOn)
			}

			cfg := containerConfig(t, s)
			u, err := url.Parse(cfg.AMQP.URL)
			if err != nil || u.Hostname() != "rabbitmq" {
				t.Errorf("amqp.url %q does not reach the rabbitmq service", config.RedactURL(cfg.AMQP.URL))
			}
			rmqEnv := service(t, p, "rabbitmq").Environment
			if pw, _ := u.User.Password(); u.User.Username() != *rmqEnv["RABBITMQ_DEFAULT_USER"] ||
				pw != *rmqEnv["RABBITMQ_DEFAULT_PASS"] {
				t.Error("amqp.url credentials differ from the broker's")
			}
			if name == "publisher" && !strings.HasPrefix(cfg.Publisher.Listen, "0.0.0.0:") {
				t.Errorf("publisher.listen = %q, want all interfaces inside the container", cfg.Publisher.Listen)
			}
		})
	}

	t.Run("the publisher's port is the one it listens on", func(t *testing.T) {
		s := service(t, p, "publisher")
		cfg := containerConfig(t, s)
		if len(s.Ports) != 1 || !strings.HasSuffix(cfg.Publisher.Listen, ":"+itoa(s.Ports[0].Target)) {
			t.Errorf("ports = %+v, listen = %q", s.Ports, cfg.Publisher.Listen)
		}
	})

	t.Run("the broker password comes from RABBITMQ_PASSWORD", func(t *testing.T) {
		p := loadCompose(t, map[string]string{"RABBITMQ_PASSWORD": "s3cret"}, "docker-compose.yml")
		if got := *service(t, p, "rabbitmq").Environment["RABBITMQ_DEFAULT_PASS"]; got != "s3cret" {
			t.Errorf("RABBITMQ_DEFAULT_PASS = %q", got)
		}
		cfg := containerConfig(t, service(t, p, "consumer"))
		if u, _ := url.Parse(cfg.AMQP.URL); u == nil || func() string { pw, _ := u.User.Password(); return pw }() != "s3cret" {
			t.Error("the consumer's amqp.url does not carry RABBITMQ_PASSWORD")
		}
	})
}

func TestComposeNATSOverride(t *testing.T) {
	p := loadCompose(t, nil, "docker-compose.yml", "docker-compose.nats.yml")

	nats := service(t, p, "nats")
	if !regexp.MustCompile(`^nats:\d+\.\d+\.\d+`).MatchString(nats.Image) {
		t.Errorf("nats image %q is not pinned", nats.Image)
	}
	if nats.HealthCheck == nil || len(nats.HealthCheck.Test) < 2 {
		t.Errorf("nats healthcheck = %+v", nats.HealthCheck)
	}
	if !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats command %v does not enable JetStream", nats.Command)
	}
	if _, ok := p.DisabledServices["rabbitmq"]; !ok {
		t.Error("rabbitmq still starts with the NATS override")
	}

	for name, replicas := range millraceServices {
		s := service(t, p, name)
		checkMillraceService(t, s, replicas)
		if got := slices.Sorted(maps.Keys(s.DependsOn)); !slices.Equal(got, []string{"nats"}) ||
			s.DependsOn["nats"].Condition != types.ServiceConditionHealthy {
			t.Errorf("%s depends_on = %+v, want nats service_healthy only", name, s.DependsOn)
		}
		if got := s.Environment["MILLRACE_BACKEND"]; got == nil || *got != "nats" {
			t.Errorf("%s does not select the nats backend", name)
		}

		// Warning: the NATS backend is built in parallel with this file; the
		// configuration the override gives is checked once it exists.
		if slices.Contains(config.Backends, "nats") {
			_ = containerConfig(t, s)
		} else {
			t.Logf("%s: config not checked, this build has no nats backend (backends: %v)", name, config.Backends)
		}
	}
}

// checkMillraceService checks what every service on the millrace image needs.
func checkMillraceService(t *testing.T, s types.ServiceConfig, replicas int) {
	t.Helper()
	if s.Build == nil || s.Build.Dockerfile != "deployments/Dockerfile" || s.Build.Context != repoRoot(t) {
		t.Errorf("%s build = %+v, want deployments/Dockerfile from the repository root", s.Name, s.Build)
	}
	if want := []string{"/usr/local/bin/" + s.Name}; !slices.Equal(s.Command, want) {
		t.Errorf("%s command = %v, want %v", s.Name, s.Command, want)
	}
	got := 1
	if s.Deploy != nil && s.Deploy.Replicas != nil {
		got = *s.Deploy.Replicas
	}
	if got != replicas {
		t.Errorf("%s replicas = %d, want %d", s.Name, got, replicas)
	}
	if !s.ReadOnly {
		t.Errorf("%s has a writable root file system", s.Name)
	}
}

// containerConfig loads the configuration the service's container gets: the
// file MILLRACE_CONFIG names, read from where the service mounts it from,
// and the service's MILLRACE_* environment.
func containerConfig(t *testing.T, s types.ServiceConfig) config.Config {
	t.Helper()
	var environ []string
	for k, v := range s.Environment {
		if v != nil && k != config.EnvFile {
			environ = append(environ, k+"="+*v)
		}
	}
	file := *s.Environment[config.EnvFile]
	var host string
	for _, v := range s.Volumes {
		if rel, err := filepath.Rel(v.Target, file); err == nil && !strings.HasPrefix(rel, "..") {
			host = filepath.Join(v.Source, rel)
		}
	}
	if host == "" {
		t.Fatalf("%s: %s=%s is not in a mounted volume", s.Name, config.EnvFile, file)
	}
	if want := filepath.Join(repoRoot(t), "configs"); filepath.Dir(host) != want {
		t.Errorf("%s: config file %s is not from configs/", s.Name, host)
	}

	cfg, _, err := config.Load(host, environ)
	if err != nil {
		t.Fatalf("%s: the configuration the container gets is invalid: %v", s.Name, err)
	}

	return cfg
}
