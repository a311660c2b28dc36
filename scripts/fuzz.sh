#!/bin/bash
# Runs every fuzz target in the module for a while each (default 20s):
#   scripts/fuzz.sh [DURATION]      e.g. scripts/fuzz.sh 5m
# New crashers land in the package's testdata/fuzz and fail `go test` after.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-20s}"
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
	pkg="./$(dirname "${file#./}")"
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "== $pkg $target ($duration)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$duration" -fuzzminimizetime 10x "$pkg"
	done
done
