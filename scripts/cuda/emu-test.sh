#!/bin/sh
# Runs the cuda-tagged tests of packages cuda and engine/gpu here, without
# a GPU: gorgonia.org/cu is replaced by scripts/cuda/emu/cu (two GPUs of
# host memory, the kernels of cuda/kernels/*.cu compiled for the host, one
# OS thread per CUDA thread where a kernel has barriers or shuffles,
# uploads held until something waits for them) and libcublas by
# emu/cublas.c (the reference Sgemm). Everything is built with
# AddressSanitizer, so an out-of-bounds access in a kernel or a copy stops
# the test. It checks index math, argument plumbing, buffer sizes and the
# tests themselves before GPU time is spent; it says nothing of speed, of
# the GPU's memory model or of cuBLAS, so scripts/gpu-check.sh on a GPU
# stays the real check. The throughput benchmark is skipped. NCCL is
# emu/nccl.c: ranks in processes of this machine meeting in shared
# memory (two-rank tests put one rank on each emulated GPU). Then the
# emulated bin/cohort-cuda trains a small MLP
# through the whole CLI (--device cuda): alone, against the same run on the
# CPU, as two ranks over the TCP ring and through NCCL, and through NCCL
# stopped by SIGTERM and resumed; and a small ResNet as two ranks over the
# TCP ring, and with synchronised BatchNorm over the ring and through
# NCCL, against the same runs on the CPU. Needs g++ 12 (C++20 <barrier>),
# libasan and the CUDA headers (scripts/cuda/install-toolkit.sh); about
# four minutes on two cores.
# Usage: scripts/cuda/emu-test.sh [test binary flags, e.g. -test.run LeNet -test.v]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
emu=$root/scripts/cuda/emu
tmp=$(mktemp -d)
# Emulated NCCL segments a test left behind (a communicator whose peer
# never came) go too.
trap 'rm -rf "$tmp" /dev/shm/cohort-emu-nccl-*' EXIT
mkdir -p "$tmp/cu" "$tmp/lib"
cp "$emu/cu/go.mod" "$emu/cu/"*.go "$emu/cu/emu.cpp" "$tmp/cu/"
for k in "$root"/cuda/kernels/*.cu; do
	cp "$k" "$tmp/cu/k_$(basename "$k" .cu).h"
done
gcc -O2 -shared -fPIC -Wl,-soname,libcublas.so -o "$tmp/lib/libcublas.so" "$emu/cublas.c"
# Package cuda links -lcuda for the two driver calls cu lacks; emu.cpp
# defines them, so the library only has to exist.
echo >"$tmp/empty.c"
gcc -shared -fPIC -o "$tmp/lib/libcuda.so" "$tmp/empty.c"
# NCCL for ranks in processes of this machine (emu/nccl.c), dlopened as
# the real one is.
gcc -O2 -shared -fPIC -Wl,-soname,libnccl.so.2 -o "$tmp/lib/libnccl.so.2" "$emu/nccl.c"
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
	(cd "$pkg" && LD_LIBRARY_PATH="$tmp/lib" "$tmp/$(basename "$pkg").test" -test.count=1 -test.skip 'Throughput' "$@") || fail=1
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
# The same through (emulated) NCCL; then again, stopped by SIGTERM in the
# middle of the first epoch and resumed: the stop request comes back from
# the device one step late, every rank must checkpoint the same step, and
# the resumed run must end where the uninterrupted one did.
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $cfg dataset.train.batchsize_per_replica=32 $flags \
	--device cuda --comm nccl --output-dir "$tmp/nccl" || fail=1
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $cfg dataset.train.batchsize_per_replica=32 $flags --log-freq 1 \
	--device cuda --comm nccl --output-dir "$tmp/nccl-stop" >"$tmp/stop.log" 2>&1 &
stopped=$!
# SIGTERM once the first epoch's third step (of 8) is logged: mid-phase.
for _ in $(seq 600); do
	grep -q "epoch 1/2 train step 3/" "$tmp/stop.log" && break
	sleep 0.1
done
kill -TERM "$stopped"
rc=0
wait "$stopped" || rc=$?
grep -E "preempted|checkpoint" "$tmp/stop.log" || true
if [ "$rc" != 5 ] || ! grep -q "preempted after train phase 0 step" "$tmp/stop.log"; then
	echo "emu-test: the SIGTERMed NCCL run exited $rc, want 5 (preempted in the first train phase, after a checkpoint)" >&2
	fail=1
fi
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $cfg dataset.train.batchsize_per_replica=32 $flags \
	--device cuda --comm nccl --output-dir "$tmp/nccl-stop" --resume auto || fail=1
# A small ResNet (configs/synthetic_resnet.yaml shrunk to 8×8 crops, two
# stages of one basic block, 4 initial planes: BatchNorm, identity and
# projection shortcuts) as two ranks over the TCP ring, on the emulated GPU
# and on the CPU.
rcfg="-c configs/synthetic_resnet.yaml num_epochs=2 dataset.train.num_samples=256 dataset.test.num_samples=128
	dataset.train.crop_size=8 dataset.test.crop_size=8 dataset.train.transforms.0.transforms.1.size=8
	dataset.train.batchsize_per_replica=16 model.num_blocks=[1,1] model.init_planes=4
	model.heads.0.fork_block=block1-0 model.heads.0.in_plane=8"
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $rcfg $flags --device cpu --output-dir "$tmp/resnet-cpu" >/dev/null || fail=1
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $rcfg $flags --device cuda --comm tcp --output-dir "$tmp/resnet-gpu" || fail=1
# The same with synchronised BatchNorm: on the CPU, on the emulated GPU
# over the TCP ring (statistics summed on the host) and through NCCL.
# shellcheck disable=SC2086
"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $rcfg +batch_norm_sync_mode=pytorch $flags --device cpu \
	--output-dir "$tmp/sync-cpu" >/dev/null || fail=1
for comm in tcp nccl; do
	# shellcheck disable=SC2086
	"$tmp/cohort-cuda" launch --nproc-per-node 2 -- train $rcfg +batch_norm_sync_mode=pytorch $flags --device cuda \
		--comm $comm --output-dir "$tmp/sync-$comm" >/dev/null || fail=1
done
# The emulated GPU sums in other orders than the CPU: close, not equal.
python3 - "$tmp" <<'PY' || fail=1
import json, sys
def phases(run, phase):
    rows = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/metrics.jsonl")]
    return [r for r in rows if r["phase"] == phase]
def close(a, b, loss_rel):
    return abs(a["accuracy"] - b["accuracy"]) <= 0.01 and abs(a["loss"] - b["loss"]) <= loss_rel * a["loss"] + 1e-4
cpu, gpu, gpu2, nccl, resumed = (phases(r, "test")[-1] for r in ("cpu", "gpu", "gpu2", "nccl", "nccl-stop"))
print(f"mlp test accuracy: cpu {cpu['accuracy']:.4f}, emulated gpu {gpu['accuracy']:.4f}, 2 ranks {gpu2['accuracy']:.4f}, "
      f"2 ranks nccl {nccl['accuracy']:.4f}, stopped and resumed {resumed['accuracy']:.4f}")
print(f"mlp test loss: cpu {cpu['loss']:.5f}, emulated gpu {gpu['loss']:.5f}, 2 ranks {gpu2['loss']:.5f}, "
      f"2 ranks nccl {nccl['loss']:.5f}, stopped and resumed {resumed['loss']:.5f}")
ok = close(cpu, gpu, 0.02) and close(cpu, gpu2, 0.02) and close(cpu, nccl, 0.02)
# Resuming restores the device's weights and momentum exactly.
ok = ok and resumed["loss"] == nccl["loss"] and resumed["accuracy"] == nccl["accuracy"]
rc, rg = phases("resnet-cpu", "train"), phases("resnet-gpu", "train")
tc, tg = phases("resnet-cpu", "test")[-1], phases("resnet-gpu", "test")[-1]
print("resnet train loss by epoch: cpu " + ", ".join(f"{r['loss']:.5f}" for r in rc) + "; emulated gpu " + ", ".join(f"{r['loss']:.5f}" for r in rg))
print(f"resnet test: cpu loss {tc['loss']:.5f} accuracy {tc['accuracy']:.4f}; emulated gpu loss {tg['loss']:.5f} accuracy {tg['accuracy']:.4f}")
# The same batches and statistics on both, the test phase included (every
# rank evaluates with rank 0's running statistics, sent to the devices).
ok = ok and len(rc) == len(rg) == 2 and all(close(a, b, 0.01) for a, b in zip(rc, rg)) and close(tc, tg, 0.01)
# It learns: the loss falls and the test accuracy is far above chance (0.5).
ok = ok and rg[-1]["loss"] < rg[0]["loss"] and tg["accuracy"] >= 0.9
sc = phases("sync-cpu", "train") + phases("sync-cpu", "test")
for comm in ("tcp", "nccl"):
    sg = phases(f"sync-{comm}", "train") + phases(f"sync-{comm}", "test")
    print(f"resnet, synchronised batchnorm, {comm}: loss cpu " + ", ".join(f"{r['loss']:.5f}" for r in sc) +
          "; emulated gpu " + ", ".join(f"{r['loss']:.5f}" for r in sg))
    ok = ok and len(sc) == len(sg) == 4 and all(close(a, b, 0.01) for a, b in zip(sc, sg))
sys.exit(0 if ok else 1)
PY
exit "$fail"
