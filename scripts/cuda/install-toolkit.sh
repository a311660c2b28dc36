#!/bin/sh
# Installs, idempotently, Debian's CUDA headers and libraries (non-free) that
# `go build -tags cuda` needs, and with --nvcc also nvcc for regenerating the
# committed PTX/fatbin kernels. Only cuda-tagged builds need this; a plain
# build never does. ≈0.8 GB download with nvcc, ≈10 min (notes/cuda.md).
set -eu
want_nvcc=0
[ "${1:-}" = --nvcc ] && want_nvcc=1
pkgs=""
[ -e /usr/include/cuda.h ] || pkgs="nvidia-cuda-dev"
[ "$want_nvcc" = 1 ] && ! command -v nvcc >/dev/null 2>&1 && pkgs="$pkgs nvidia-cuda-toolkit"
[ -z "$pkgs" ] && { echo "cuda toolkit: already installed"; exit 0; }
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q '^Components:.*non-free' "$src"; then
	$sudo sed -i 's/^Components: main$/Components: main contrib non-free/' "$src"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends $pkgs
