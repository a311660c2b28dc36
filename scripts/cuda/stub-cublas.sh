#!/bin/sh
# Makes DIR/libcublas.so: a stub with the SONAME libcublas.so.13 and no
# symbol versions, exporting every function Debian's libcublas.so.11
# exports. Linking `-tags cuda` binaries against it (CGO_LDFLAGS=-LDIR)
# makes them need libcublas.so.13, so they run on a CUDA 13 machine; a
# normal link against Debian's library records `cublasSgemm_v2@libcublas.so.11`
# and fails to load there (shared/notes/cuda.md). The stub is never run.
# Usage: scripts/cuda/stub-cublas.sh DIR
set -eu
dir=${1:?usage: stub-cublas.sh DIR}
real=${CUBLAS_SO:-/usr/lib/x86_64-linux-gnu/libcublas.so.11}
[ -e "$real" ] || { echo "stub-cublas: $real not found; run scripts/cuda/install-toolkit.sh" >&2; exit 1; }
mkdir -p "$dir"
out="$dir/libcublas.so"
[ "$out" -nt "$real" ] && [ "$out" -nt "$0" ] && exit 0
nm -D --defined-only "$real" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort -u |
	sed 's/.*/void &(void) {}/' >"$dir/cublas_stub.c"
gcc -shared -fPIC -Wl,-soname,libcublas.so.13 -o "$out.tmp" "$dir/cublas_stub.c"
mv "$out.tmp" "$out"
echo "stub-cublas: $out ($(wc -l <"$dir/cublas_stub.c") functions, SONAME libcublas.so.13)"
