package deployments_test

import (
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestKustomizeBuild renders deployments/k8s with Kustomize's own library,
// the one `kubectl apply -k` uses, and decodes what it would apply.
func TestKustomizeBuild(t *testing.T) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "k8s")
	if err != nil {
		t.Fatalf("kustomize build deployments/k8s: %v", err)
	}

	var k kustomization
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join("k8s", "kustomization.yaml")), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if got, want := resources.Size(), len(k.Resources); got != want {
		t.Errorf("rendered %d objects from %d resource files", got, want)
	}

	for _, r := range resources.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		if got := r.GetLabels()["app.kubernetes.io/part-of"]; got != "millrace" {
			t.Errorf("%s: label app.kubernetes.io/part-of = %q, want millrace", r.CurId(), got)
		}

		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict(data, &d); err != nil {
				t.Fatalf("rendered %s does not decode strictly: %v", r.CurId(), err)
			}
			for _, img := range k.Images {
				if want := img.Name + ":" + img.NewTag; d.Spec.Template.Spec.Containers[0].Image != want {
					t.Errorf("%s: image %q, want %q from kustomization images",
						d.Name, d.Spec.Template.Spec.Containers[0].Image, want)
				}
			}
		case "Service", "ConfigMap", "Secret":
			var obj any
			switch r.GetKind() {
			case "Service":
				obj = &corev1.Service{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			default:
				obj = &corev1.Secret{}
			}
			if err := yaml.UnmarshalStrict(data, obj); err != nil {
				t.Fatalf("rendered %s does not decode strictly: %v", r.CurId(), err)
			}
		default:
			t.Errorf("unexpected rendered %s", r.CurId())
		}
	}
}
