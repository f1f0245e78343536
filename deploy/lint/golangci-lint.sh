#!/usr/bin/env bash
# Installs golangci-lint (pinned) once and prints the path of its binary.
#
#   deploy/lint/golangci-lint.sh          install when missing; print the binary's path
#
# It is built from the Go module proxy with `go install` into its own
# directory, so hookline's go.mod and go.sum never carry the linter's
# dependencies, and a fresh machine gets the same version as CI. Idempotent:
# a second run only prints the path.
#
# Environment:
#   HOOKLINE_LINT_DIR  where the binary goes (~/.cache/hookline/golangci-lint-<version>)
#   GO                 the go command (go)
set -euo pipefail

VERSION=v2.15.0
DIR=${HOOKLINE_LINT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hookline/golangci-lint-$VERSION}
BIN=$DIR/golangci-lint
GO=${GO:-go}

if [[ ! -x $BIN ]]; then
	echo "golangci-lint.sh: installing golangci-lint $VERSION into $DIR" >&2
	mkdir -p "$DIR"
	GOBIN=$DIR "$GO" install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$VERSION"
fi
echo "$BIN"
