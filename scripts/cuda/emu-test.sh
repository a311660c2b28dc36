#!/bin/sh
# Runs the cuda-tagged tests of packages cuda and engine/gpu here, without
# a GPU: gorgonia.org/cu is replaced by scripts/cuda/emu/cu (host memory,
# the kernels of cuda/kernels/*.cu compiled for the host, one OS thread per
# CUDA thread where a kernel has barriers or shuffles) and libcublas by
# emu/cublas.c (the reference Sgemm). Everything is built with
# AddressSanitizer, so an out-of-bounds access in a kernel or a copy stops
# the test. It checks index math, argument plumbing, buffer sizes and the
# tests themselves before GPU time is spent; it says nothing of speed, of
# the GPU's memory model or of cuBLAS, so scripts/gpu-check.sh on a GPU
# stays the real check. NCCL tests and the throughput benchmark are
# skipped. Then the emulated bin/cohort-cuda trains a small MLP through the
# whole CLI (--device cuda): alone, against the same run on the CPU, and as
# two ranks over the TCP ring. Needs g++ 12 (C++20 <barrier>), libasan and
# the CUDA headers (scripts/cuda/install-toolkit.sh); about two minutes on
# two cores.
# Usage: scripts/cuda/emu-test.sh [test binary flags, e.g. -test.run LeNet -test.v]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
emu=$root/scripts/cuda/emu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/cu" "$tmp/lib"
cp "$emu/cu/go.mod" "$emu/cu/cu.go" "$emu/cu/emu.cpp" "$tmp/cu/"
for k in "$root"/cuda/kernels/*.cu; do
	cp "$k" "$tmp/cu/k_$(basename "$k" .cu).h"
done
gcc -O2 -shared -fPIC -Wl,-soname,libcublas.so -o "$tmp/lib/libcublas.so" "$emu/cublas.c"
cp "$root/go.mod" "$root/go.sum" "$tmp/"
echo "replace gorgonia.org/cu => $tmp/cu" >>"$tmp/go.mod"
export CGO_ENABLED=1 CGO_LDFLAGS="-L$tmp/lib" CGO_CXXFLAGS="-O1 -fsanitize=address"
cd "$root"
for pkg in cuda engine/gpu; do
	go test -c -asan -tags cuda -modfile "$tmp/go.mod" -o "$tmp/$(basename "$pkg").test" "./$pkg"
done
go build -asan -tags cuda -modfile "$tmp/go.mod" -o "$tmp/cohort-cuda" ./cmd/cohort
fail=0
for pkg in cuda engine/gpu; do
	echo "=== $pkg (host emulation)"
	(cd "$pkg" && LD_LIBRARY_PATH="$tmp/lib" "$tmp/$(basename "$pkg").test" -test.count=1 -test.skip 'NCCL|Throughput' "$@") || fail=1
done

echo "=== cohort-cuda train (host emulation)"
export LD_LIBRARY_PATH="$tmp/lib"
cfg="-c configs/synthetic_mlp.yaml num_epochs=2 dataset.train.num_samples=512 dataset.test.num_samples=256 meters.accuracy.topk=[1]"
flags="--log-freq 0 --no-tensorboard --seed 3"
# shellcheck disable=SC2086 # $cfg and $flags are lists of words
"$tmp/cohort-cuda" train $cfg $flags --device cpu --output-dir "$tmp/cpu" >/dev/null || fail=1
# shellcheck disable=SC2086
"$tmp/cohort-cuda" train $cfg $flags --device cuda --output-dir "$tmp/gpu" || fail=1
# Two ranks × 32 take the same steps as one rank × 64.
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $cfg dataset.train.batchsize_per_replica=32 $flags \
	--device cuda --comm tcp --output-dir "$tmp/gpu2" || fail=1
# The emulated GPU sums in other orders than the CPU: close, not equal.
python3 - "$tmp" <<'PY' || fail=1
import json, sys
def last(run, phase):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/metrics.jsonl")]
    return [r for r in rows if r["phase"] == phase][-1]
cpu, gpu, gpu2 = (last(r, "test") for r in ("cpu", "gpu", "gpu2"))
print(f"test accuracy: cpu {cpu['accuracy']:.4f}, emulated gpu {gpu['accuracy']:.4f}, 2 ranks {gpu2['accuracy']:.4f}")
print(f"test loss: cpu {cpu['loss']:.5f}, emulated gpu {gpu['loss']:.5f}, 2 ranks {gpu2['loss']:.5f}")
ok = all(abs(cpu["accuracy"] - r["accuracy"]) <= 0.01 and abs(cpu["loss"] - r["loss"]) <= 0.02 * cpu["loss"] + 1e-4
         for r in (gpu, gpu2))
sys.exit(0 if ok else 1)
PY
exit "$fail"
