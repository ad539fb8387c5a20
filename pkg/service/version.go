package service

// Version is the release this binary was built from. The build stamps it with
// -ldflags "-X github.com/millrace/millrace/pkg/service.Version=…" (see
// deployments/build.sh, which the container image and CI both use); a plain
// go build or go run leaves "dev".
var Version = "dev"
