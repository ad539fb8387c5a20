package deployments_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

var serviceNames = []string{"publisher", "consumer", "extraspecialconsumer"}

// parseDockerfile parses the Dockerfile with BuildKit's own parser.
func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, "Dockerfile")))
	if err != nil {
		t.Fatalf("parsing Dockerfile: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("parsing Dockerfile instructions: %v", err)
	}

	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("stages = %d, want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[1]

	t.Run("the builder is a pinned Go at least as new as go.mod asks", func(t *testing.T) {
		m := regexp.MustCompile(`^golang:(\d+\.\d+\.\d+)-`).FindStringSubmatch(build.BaseName)
		if m == nil {
			t.Fatalf("build stage FROM %q is not a pinned golang:X.Y.Z image", build.BaseName)
		}
		if want := goModVersion(t); versionLess(m[1], want) {
			t.Errorf("builder Go %s is older than go.mod's go %s", m[1], want)
		}
	})

	t.Run("the build stage runs the build script with the version", func(t *testing.T) {
		var runs []string
		for _, cmd := range build.Commands {
			if run, ok := cmd.(*instructions.RunCommand); ok {
				runs = append(runs, strings.Join(run.CmdLine, " "))
			}
		}
		if !slices.ContainsFunc(runs, func(r string) bool {
			return strings.Contains(r, "deployments/build.sh") && strings.Contains(r, "$VERSION")
		}) {
			t.Errorf("no RUN of deployments/build.sh with $VERSION in %q", runs)
		}
	})

	t.Run("the runtime image is minimal, non-root and holds every service", func(t *testing.T) {
		if !strings.HasPrefix(runtime.BaseName, "gcr.io/distroless/static") || strings.HasSuffix(runtime.BaseName, ":latest") {
			t.Errorf("runtime FROM %q, want a pinned distroless static image", runtime.BaseName)
		}
		var user, cmd string
		var copied bool
		for _, c := range runtime.Commands {
			switch c := c.(type) {
			case *instructions.UserCommand:
				user = c.User
			case *instructions.CmdCommand:
				cmd = strings.Join(c.CmdLine, " ")
			case *instructions.CopyCommand:
				if c.From == build.Name && c.DestPath == "/usr/local/bin/" {
					copied = true
				}
			case *instructions.RunCommand:
				t.Errorf("RUN in the runtime stage: it has no shell")
			}
		}
		if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("USER %q, want a non-root numeric user", user)
		} else if _, err := strconv.Atoi(uid); err != nil {
			t.Errorf("USER %q: Kubernetes' runAsNonRoot can only verify a numeric user", user)
		}
		if !copied {
			t.Error("the binaries are not copied from the build stage to /usr/local/bin/")
		}
		if cmd != "/usr/local/bin/publisher" {
			t.Errorf("CMD %q, want /usr/local/bin/publisher", cmd)
		}
	})
}

// TestReleaseBuild builds the services with deployments/build.sh, as the
// Dockerfile's build stage does, and checks what the image relies on.
func TestReleaseBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every service; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	const version = "v0.0.0-releasetest"
	out := t.TempDir()
	build := exec.CommandContext(ctx, "sh", "build.sh", out, version)
	build.Env = append(os.Environ(), "MILLRACE_VERSION=") // the argument must win
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}

	for _, name := range serviceNames {
		t.Run(name+" is static and stamped with the version", func(t *testing.T) {
			bin := filepath.Join(out, name)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("%s is not an ELF binary: %v", name, err)
			}
			defer f.Close()
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s is dynamically linked; the distroless static image has no libc", name)
				}
			}

			got, err := exec.CommandContext(ctx, bin, "-version").Output()
			if err != nil {
				t.Fatalf("%s -version: %v", name, err)
			}
			if want := name + " " + version + "\n"; string(got) != want {
				t.Errorf("%s -version = %q, want %q", name, got, want)
			}
		})
	}
}

// goModVersion is the go directive of go.mod, read by the go command.
func goModVersion(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("go", "mod", "edit", "-json", filepath.Join(repoRoot(t), "go.mod")).Output()
	if err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}
	var mod struct{ Go string }
	if err := json.Unmarshal(b, &mod); err != nil {
		t.Fatalf("go mod edit -json: %v", err)
	}

	return mod.Go
}

// versionLess compares dotted version numbers such as 1.26.4.
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}

	return false
}
