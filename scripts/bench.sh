#!/usr/bin/env bash
# Runs pvhub's benchmarks and prints them after a header naming the date, the
# commit, the machine and Go: the figures in docs/benchmarks.md come from it.
# Everything runs on 127.0.0.1; close other work first, the machine is shared
# between the benchmark's clients and pvhub.
#   scripts/bench.sh              every benchmark (several minutes)
#   scripts/bench.sh ./runtime/   one package
set -euo pipefail
pkgs=("${@:-./...}")
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
echo "memory:  $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
echo "go:      $(go version | cut -d' ' -f3-)"
echo
# BENCHTIME (default 1s) is passed to -benchtime; the WebSocket benchmarks run 3 s per iteration.
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" "${pkgs[@]}" 2>&1 | grep -v '^\(PASS\|ok \|goos\|goarch\)' || true
