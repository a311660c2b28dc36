#!/bin/sh
# Regenerates the committed GPU kernels: for every cuda/kernels/NAME.cu, a
# NAME.ptx (compute_80, JIT-compiled by any newer driver) and a NAME.fatbin
# (SASS for sm_80 and sm_90 plus compute_90 PTX), which package cuda embeds.
# Needs nvcc (scripts/cuda/install-toolkit.sh --nvcc); a normal build does not.
# Usage: scripts/cuda/gen-kernels.sh [--check]   (--check: fail if stale)
set -eu
cd "$(dirname "$0")/../../cuda/kernels"
command -v nvcc >/dev/null 2>&1 || { echo "gen-kernels: nvcc not found; run scripts/cuda/install-toolkit.sh --nvcc" >&2; exit 1; }
check=0
[ "${1:-}" = --check ] && check=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No -lineinfo: it writes the source's absolute path into the PTX and the
# fatbin, so the files (and --check) would depend on where the repo is.
flags="-O3 -std=c++14"
for src in *.cu; do
	name=${src%.cu}
	nvcc $flags -ptx -arch=compute_80 -o "$tmp/$name.ptx" "$src"
	nvcc $flags -fatbin \
		-gencode arch=compute_80,code=sm_80 \
		-gencode 'arch=compute_90,code=[sm_90,compute_90]' \
		-o "$tmp/$name.fatbin" "$src"
	for out in "$name.ptx" "$name.fatbin"; do
		if [ "$check" = 1 ]; then
			# nvcc writes no timestamps or paths, so equal sources give equal bytes.
			cmp -s "$tmp/$out" "$out" || { echo "gen-kernels: cuda/kernels/$out is stale; rerun scripts/cuda/gen-kernels.sh" >&2; exit 1; }
		else
			mv "$tmp/$out" "$out"
		fi
	done
done
[ "$check" = 1 ] && echo "gen-kernels: up to date" || echo "gen-kernels: wrote $(ls *.ptx *.fatbin | tr '\n' ' ')"
