#!/bin/sh
# Builds every millrace service the way the container image ships it: static
# (no cgo), with trimmed paths, stripped, and the version stamped in. The
# Dockerfile, `go tool task build-release` and the deployments tests all run
# this script, so the flags live here only.
#
# usage: deployments/build.sh OUTDIR [VERSION]
# VERSION defaults to $MILLRACE_VERSION, else `git describe`, else "dev".
set -eu

out=${1:?usage: deployments/build.sh OUTDIR [VERSION]}
version=${2:-${MILLRACE_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}}

case $out in /*) ;; *) out=$(pwd)/$out ;; esac
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build \
	-trimpath \
	-ldflags "-s -w -X github.com/millrace/millrace/pkg/service.Version=$version" \
	-o "$out/" \
	./services/publisher ./services/consumer ./services/extraspecialconsumer
