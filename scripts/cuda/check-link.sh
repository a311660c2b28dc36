#!/bin/sh
# Checks that cuda-tagged binaries load on a CUDA 13 machine: they must need
# libcublas.so.13 and libcuda.so.1, and neither libcublas.so.11 nor any
# symbol version of it (see stub-cublas.sh).
# Usage: scripts/cuda/check-link.sh BINARY...
set -eu
fail=0
for bin in "$@"; do
	needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
	versions=$(readelf -V "$bin" | grep -o 'libcublas[^ ]*' | sort -u | tr '\n' ' ' || true)
	case " $needed" in *" libcublas.so.13 "*) ;; *) echo "check-link: $bin does not need libcublas.so.13 (needs: $needed)" >&2; fail=1 ;; esac
	case " $needed" in *" libcuda.so.1 "*) ;; *) echo "check-link: $bin does not need libcuda.so.1 (needs: $needed)" >&2; fail=1 ;; esac
	case "$needed $versions" in *libcublas.so.11*) echo "check-link: $bin refers to libcublas.so.11: $needed $versions" >&2; fail=1 ;; esac
	[ "$fail" = 0 ] && echo "check-link: $bin needs $needed"
done
exit "$fail"
