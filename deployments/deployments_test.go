// Package deployments_test checks the deployment files with the parsers of
// the tools that read them: Compose files load and validate with compose-go,
// Kubernetes manifests, and what Kustomize renders from them, decode strictly
// into the k8s.io/api types, and the Dockerfile parses with BuildKit's parser
// and its build script builds.
package deployments_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// repoRoot is the repository root; tests run in deployments/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatalf("finding the repository root: %v", err)
	}

	return root
}

func itoa[T ~int | ~int32 | ~uint32](n T) string {
	return strconv.Itoa(int(n))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	return data
}
