package deployments_test

import (
	"bytes"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/millrace/millrace/pkg/config"
)

// kustomization is the part of a kustomization.yaml these manifests use;
// decoding it strictly makes any other field an error to look at.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

// manifests are the decoded objects of deployments/k8s, by kind and name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

// loadManifests decodes every resource kustomization.yaml lists into its
// k8s.io/api type, strictly: an unknown or misspelt field is an error.
func loadManifests(t *testing.T) manifests {
	t.Helper()
	dir := filepath.Join("k8s")

	var k kustomization
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
	}

	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) {
			t.Errorf("%s is not listed in kustomization.yaml resources", base)
		}
	}

	m := manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
	}
	for _, res := range k.Resources {
		data := readFile(t, filepath.Join(dir, res))
		if bytes.Contains(data, []byte("\n---")) {
			t.Fatalf("%s: one object per file, please", res)
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &meta); err != nil {
			t.Fatalf("%s: %v", res, err)
		}

		var obj interface{ GetName() string }
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			obj, m.deployments[strings.TrimSuffix(res, ".yaml")] = d, d
		case "v1 Service":
			s := &corev1.Service{}
			obj, m.services[res] = s, s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			obj, m.configMaps[res] = c, c
		case "v1 Secret":
			s := &corev1.Secret{}
			obj, m.secrets[res] = s, s
		default:
			t.Fatalf("%s: unexpected %s %s", res, meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict(data, obj); err != nil {
			t.Fatalf("%s does not decode strictly into %s: %v", res, meta.Kind, err)
		}
		if obj.GetName() == "" {
			t.Errorf("%s has no name", res)
		}
	}

	return m
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)

	if got := slices.Sorted(maps.Keys(m.deployments)); !slices.Equal(got,
		[]string{"consumer", "extraspecialconsumer", "publisher"}) {
		t.Fatalf("deployments = %v, want one per service", got)
	}

	for file, d := range m.deployments {
		t.Run(d.Name+" runs replicas of its service safely", func(t *testing.T) {
			if d.Name != file {
				t.Errorf("%s.yaml holds Deployment %s", file, d.Name)
			}
			if d.Spec.Replicas == nil {
				t.Error("replicas not set")
			} else if *d.Spec.Replicas < 2 {
				t.Errorf("replicas = %d, want at least 2", *d.Spec.Replicas)
			}
			if d.Spec.Selector == nil || !isSubset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) ||
				len(d.Spec.Selector.MatchLabels) == 0 {
				t.Errorf("selector %v does not select the pod template's labels %v",
					d.Spec.Selector, d.Spec.Template.Labels)
			}
			pod := d.Spec.Template.Spec
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the pod may run as root")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("containers = %d, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			if want := []string{"/usr/local/bin/" + d.Name}; !slices.Equal(c.Command, want) {
				t.Errorf("command = %v, want %v", c.Command, want)
			}
			if !strings.HasPrefix(c.Image, "millrace:") {
				t.Errorf("image = %q, want the millrace image (kustomization.yaml sets its tag)", c.Image)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
				if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
					t.Errorf("%s request %s / limit %s: want both, request <= limit", res, req.String(), lim.String())
				}
			}
			if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("the container needs a read-only root and no privilege escalation")
			}

			cfg := checkPodConfig(t, m, pod, c)
			checkProbes(t, d, c, cfg)
		})
	}

	t.Run("the publisher Service reaches the publisher pods", func(t *testing.T) {
		pub := m.deployments["publisher"]
		var found bool
		for _, s := range m.services {
			if !isSubset(s.Spec.Selector, pub.Spec.Template.Labels) || len(s.Spec.Selector) == 0 {
				continue
			}
			found = true
			for _, p := range s.Spec.Ports {
				if containerPort(pub.Spec.Template.Spec.Containers[0], p.TargetPort.String()) == 0 {
					t.Errorf("service %s targets port %s, which the publisher does not serve", s.Name, p.TargetPort.String())
				}
			}
		}
		if !found {
			t.Error("no Service selects the publisher pods")
		}
	})

	t.Run("no Secret value is in a ConfigMap", func(t *testing.T) {
		if len(m.secrets) == 0 {
			t.Fatal("no Secret: the broker credentials must come from one")
		}
		for _, s := range m.secrets {
			values := slices.Collect(maps.Values(s.StringData))
			for _, b := range s.Data {
				values = append(values, string(b))
			}
			for _, v := range values {
				u, err := url.Parse(v)
				if err == nil && u.User != nil {
					// The password alone must not leak either.
					if pw, ok := u.User.Password(); ok {
						values = append(values, pw)
					}
				}
			}
			for _, cm := range m.configMaps {
				for key, text := range cm.Data {
					for _, v := range values {
						if v != "" && strings.Contains(text, v) {
							t.Errorf("ConfigMap %s key %s contains a value of Secret %s", cm.Name, key, s.Name)
						}
					}
				}
			}
		}
	})

	t.Run("the ConfigMap is configs/kubernetes.yaml unchanged", func(t *testing.T) {
		want := string(readFile(t, filepath.Join(repoRoot(t), "configs", "kubernetes.yaml")))
		cm := m.configMaps["configmap.yaml"]
		if cm == nil {
			t.Fatal("configmap.yaml is missing")
		}
		if got := cm.Data["kubernetes.yaml"]; got != want {
			t.Errorf("ConfigMap %s key kubernetes.yaml differs from configs/kubernetes.yaml; copy it again", cm.Name)
		}
	})
}

// checkPodConfig checks that the container's configuration file comes from a
// ConfigMap and its broker URL from a Secret, and returns the configuration
// the container gets.
func checkPodConfig(t *testing.T, m manifests, pod corev1.PodSpec, c corev1.Container) config.Config {
	t.Helper()
	environ := []string{}
	var configFile string
	for _, e := range c.Env {
		switch {
		case e.Name == config.EnvFile:
			configFile = e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretValue(m, ref.Name, ref.Key)
			if !ok {
				t.Errorf("env %s refers to Secret %s key %s, which is not in the manifests", e.Name, ref.Name, ref.Key)
			}
			environ = append(environ, e.Name+"="+v)
		case e.ValueFrom != nil:
			t.Errorf("env %s: unexpected source", e.Name)
		default:
			environ = append(environ, e.Name+"="+e.Value)
		}
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "MILLRACE_AMQP_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}) {
		t.Error("MILLRACE_AMQP_URL does not come from a Secret")
	}

	// Find the ConfigMap key the file is mounted from.
	var data string
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, configFile)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.ConfigMap == nil {
				continue
			}
			for _, cm := range m.configMaps {
				if cm.Name == v.ConfigMap.Name {
					data = cm.Data[rel]
				}
			}
		}
	}
	if data == "" {
		t.Fatalf("%s=%q is not a key of a mounted ConfigMap", config.EnvFile, configFile)
	}

	path := filepath.Join(t.TempDir(), filepath.Base(configFile))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(path, environ)
	if err != nil {
		t.Fatalf("the configuration the container gets is invalid: %v", err)
	}
	if cfg.AMQP.QueueType != config.QueueQuorum {
		t.Errorf("amqp.queue_type = %q, want quorum on a cluster", cfg.AMQP.QueueType)
	}

	return cfg
}

// checkProbes checks that every container serves its operator endpoints on
// a port of its own, on every interface of the pod, and is probed there:
// readiness on /readyz, liveness on /healthz (which never looks at the
// broker), and a startup probe that outlasts the broker connect timeout.
func checkProbes(t *testing.T, d *appsv1.Deployment, c corev1.Container, cfg config.Config) {
	t.Helper()
	if len(c.Ports) == 0 {
		t.Fatal("the container serves no port, so nothing can probe it")
	}

	probes := []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"readiness", c.ReadinessProbe, "/readyz"},
		{"liveness", c.LivenessProbe, "/healthz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.kind)

			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe asks %s, want %s", p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if port := p.probe.HTTPGet.Port.String(); containerPort(c, port) == 0 {
			t.Errorf("%s probe port %q is not a port of the container", p.kind, port)
		}
	}
	if s := c.StartupProbe; s == nil ||
		time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second <= cfg.AMQP.ConnectTimeout {
		t.Errorf("the startup probe must allow more than amqp.connect_timeout %s before liveness applies",
			cfg.AMQP.ConnectTimeout)
	}

	key, listen := "consumer.admin_listen", cfg.Consumer.AdminListen
	if d.Name == "publisher" {
		key, listen = "publisher.listen", cfg.Publisher.Listen
	}
	if !strings.HasSuffix(listen, ":"+itoa(c.Ports[0].ContainerPort)) || !strings.HasPrefix(listen, "0.0.0.0:") {
		t.Errorf("%s %q is not the container port %d on every interface", key, listen, c.Ports[0].ContainerPort)
	}
}

// containerPort resolves a port given by name or number to the container's
// port number, 0 when the container has no such port.
func containerPort(c corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port || itoa(p.ContainerPort) == port {
			return p.ContainerPort
		}
	}

	return 0
}

func secretValue(m manifests, name, key string) (string, bool) {
	for _, s := range m.secrets {
		if s.Name != name {
			continue
		}
		if v, ok := s.StringData[key]; ok {
			return v, true
		}
		if v, ok := s.Data[key]; ok {
			return string(v), true
		}
	}

	return "", false
}

func isSubset(sub, set map[string]string) bool {
	for k, v := range sub {
		if set[k] != v {
			return false
		}
	}

	return true
}
