#!/bin/bash
# The GPU machine's check, run from a copy of the repo with what `make cuda
# gpu-carry` made here: bin/cohort-cuda, bin/cuda.test, bin/gpu.test and
# .carry/ (the PyTorch GPU anchor and MNIST; ../shared is not sent). With the
# device tool:
#   run command="bash scripts/gpu-check.sh" timeout_s=595
#       carry=["bin/cohort-cuda","bin/cuda.test","bin/gpu.test",".carry"]
# Everything that travels, tracked files and carry together, must stay under
# the tool's 64 MiB: the carry is about 51 MB (the binaries 39, MNIST 12), so
# no stray build output may be tracked (cmd/cohort/cohort was, 31 MB).
# It builds nothing and changes no GPU setting. It runs the CUDA kernel and
# GEMM tests and the GPU-vs-CPU layer and model tests (MLP, LeNet, ResNet,
# MLP with BatchNorm), trains the MNIST MLP on the GPU (one rank, to the
# CPU backend's accuracy; two ranks sharing the GPU over the TCP ring; one
# rank through NCCL), LeNet on MNIST for 10 epochs (to 99.0 %) and
# configs/synthetic_resnet.yaml as two ranks sharing the GPU (to 90 %),
# runs Cohort's throughput benchmark and the PyTorch anchor in the same
# session, then prints a PASS/FAIL table and Cohort vs PyTorch samples/s
# (MLP and LeNet rows, with where a LeNet step's time goes). Every step has
# a timeout (worst case about 9.5 minutes, a normal run well under 6). Logs go to $OUT/gpu-check
# (the device tool's output folder) or /tmp/gpu-check. Before spending GPU
# time, scripts/cuda/emu-test.sh runs the same cuda and gpu tests on the
# build machine with host-emulated kernels.
#
# The anchor is found in $ANCHOR, or shared/anchors/ or .carry/anchors/
# under the repo root.
set -u
cd "$(dirname "$0")/.."
log=${OUT:-/tmp}/gpu-check
rm -rf "$log" # runs append to metrics.jsonl: start clean
mkdir -p "$log"
export LD_LIBRARY_PATH=/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
declare -a names results

# step NAME SECONDS CMD...: runs CMD with a timeout, output to the terminal
# and $log/NAME.log, and records PASS/FAIL.
step() {
	local name=$1 secs=$2
	shift 2
	echo "=== $name (timeout ${secs}s): $*"
	timeout --kill-after=5 "$secs" "$@" 2>&1 | tee "$log/$name.log"
	local rc=${PIPESTATUS[0]}
	names+=("$name")
	if [ "$rc" = 0 ]; then
		results+=(PASS)
	elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		results+=("FAIL (timed out after ${secs}s)")
	else
		results+=("FAIL (exit $rc)")
	fi
}

anchor=${ANCHOR:-}
for a in shared/anchors/torch_gpu_anchor.py .carry/anchors/torch_gpu_anchor.py ../shared/anchors/torch_gpu_anchor.py; do
	[ -z "$anchor" ] && [ -f "$a" ] && anchor=$a
done

# The compute mode matters to the two-rank step: under Exclusive_Process a
# second process cannot open the GPU the first one holds.
step nvidia-smi 10 nvidia-smi --query-gpu=index,name,compute_mode,driver_version,memory.used,memory.total --format=csv
step cuda.test 50 bin/cuda.test -test.v -test.count=1
step gpu.test 50 bin/gpu.test -test.v -test.count=1 -test.skip '^TestThroughput$'
step bench 50 env COHORT_GPU_BENCH=1 bin/gpu.test -test.v -test.count=1 -test.run '^TestThroughput$'
if [ -x bin/cohort-cuda ]; then
	# Informational, not a check: a build with the openblas tag also needs
	# libopenblas.so.0, which the GPU machine may lack.
	echo "=== version (informational)"
	timeout 10 bin/cohort-cuda version 2>&1 | tee "$log/version.log" || echo "(bin/cohort-cuda did not start; see above)"
fi
# MNIST on the GPU through the whole trainer: one rank to the CPU
# backend's accuracy (98.14 % after 5 epochs at batch 128 with --seed 1 on
# the CPU, 2026-11-28); two ranks sharing the one GPU, gradients over the
# TCP ring; one rank with gradients through NCCL (on one GPU NCCL can only
# have one rank: this checks the plumbing, not a reduction). Needs
# bin/cohort-cuda and .carry/mnist (make gpu-carry).
mnist=.carry/mnist
if [ -x bin/cohort-cuda ] && [ -f "$mnist/train-images-idx3-ubyte.gz" ]; then
	train=(-c configs/mnist_mlp.yaml --device cuda --data-root "$mnist" --no-tensorboard --log-freq 0 --seed 1)
	# The GPU meters top-1 accuracy only (the config also asks for top-5).
	step mnist-gpu 45 bin/cohort-cuda train "${train[@]}" meters.accuracy.topk=[1] --output-dir "$log/mnist-gpu"
	step mnist-acc 5 python3 scripts/check-accuracy.py "$log/mnist-gpu/metrics.jsonl" 0.9745
	step 2rank-tcp 45 bin/cohort-cuda launch --nproc-per-node 2 -- train "${train[@]}" num_epochs=1 \
		dataset.train.batchsize_per_replica=64 meters.accuracy.topk=[1] --comm tcp --output-dir "$log/2rank"
	step 2rank-acc 5 python3 scripts/check-accuracy.py "$log/2rank/metrics.jsonl" 0.95
	step nccl-1rank 45 bin/cohort-cuda launch --nproc-per-node 1 -- train "${train[@]}" num_epochs=1 \
		meters.accuracy.topk=[1] --comm nccl --output-dir "$log/nccl"
	step nccl-acc 5 python3 scripts/check-accuracy.py "$log/nccl/metrics.jsonl" 0.95
	# LeNet as configs/mnist_lenet.yaml trains it (batch 128, lr 0.05,
	# momentum 0.9; top-1 meter only): the CPU backend reached 98.48 %
	# after epoch 1 and 99.17 % after 10 (2026-11-28); the issue asks for
	# 99.0 % within 10 epochs. check-accuracy prints every epoch's accuracy,
	# also after a timeout.
	step lenet-gpu 75 bin/cohort-cuda train -c configs/mnist_lenet.yaml --device cuda --data-root "$mnist" \
		--no-tensorboard --log-freq 0 --seed 1 --output-dir "$log/lenet-gpu"
	step lenet-acc 5 python3 scripts/check-accuracy.py "$log/lenet-gpu/metrics.jsonl" 0.99
else
	names+=(mnist-gpu 2rank-tcp nccl-1rank lenet-gpu)
	results+=("FAIL (bin/cohort-cuda or $mnist missing: make cuda gpu-carry)" "FAIL (as above)" "FAIL (as above)" "FAIL (as above)")
fi
# A small ResNet (BatchNorm, residual blocks) on synthetic_image, needing
# no data: two ranks sharing the GPU, gradients over the TCP ring, each
# rank with its own BatchNorm statistics. Two classes, so chance is 50 %;
# the CPU backend reaches 100 % after the first of the two epochs.
if [ -x bin/cohort-cuda ]; then
	step resnet-2rank 45 bin/cohort-cuda launch --nproc-per-node 2 -- train -c configs/synthetic_resnet.yaml \
		--device cuda --comm tcp --no-tensorboard --log-freq 0 --seed 1 --output-dir "$log/resnet"
	step resnet-acc 5 python3 scripts/check-accuracy.py "$log/resnet/metrics.jsonl" 0.9
else
	names+=(resnet-2rank)
	results+=("FAIL (bin/cohort-cuda missing: make cuda)")
fi

if [ -n "$anchor" ]; then
	step anchor 100 env PYTHONUNBUFFERED=1 python3 "$anchor"
else
	names+=(anchor)
	results+=("FAIL (torch_gpu_anchor.py not found; set ANCHOR or carry shared/anchors)")
fi

echo
echo "=== summary"
for i in "${!names[@]}"; do
	printf '%-12s %s\n' "${names[$i]}" "${results[$i]}"
done
# Cohort's gpu-bench lines against the anchor's JSON lines of the same run:
# each row's ratio to PyTorch eager in the same math, and for fp32 to
# PyTorch's CUDA-graph replay.
python3 - "$log/bench.log" "$log/anchor.log" <<'PY'
import json, sys
cohort, extra = [], []
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("gpu-bench "):
        cohort.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    elif line.startswith(("gpu-bench-gemm ", "gpu-bench-layer ")):
        extra.append(line.strip())  # GEMM alignment; where a LeNet step's time goes
torch = {}
try:
    for line in open(sys.argv[2], errors="replace"):
        if line.startswith("{"):
            r = json.loads(line)
            if "samples_per_s" in r:
                torch[(r["model"], r["batch"], r["variant"])] = r["samples_per_s"]
except FileNotFoundError:
    pass
print(f"{'model':<27}{'batch':>6} {'math':<5}{'cohort/s':>12}{'torch eager/s':>15}{'ratio':>7}{'torch graph/s':>15}{'ratio':>7}")
for c in cohort:
    if c.get("model") == "lenet":
        model, label = "lenet", "lenet"
    else:
        h = c.get("hidden", "?")
        model, label = ("mlp" if h == "512" else "mlp-big"), f"784-{h}-{h}-10"
    if c.get("feed") == "host":
        label += " host-fed"  # batches from host memory, as the trainer feeds them
    b, mode, s = int(c["batch"]), c["math"], float(c["samples_per_s"])
    eager = torch.get((model, b, mode))
    graph = torch.get((model, b, "graph")) if mode == "fp32" else None
    fmt = lambda v: (f"{v:>15,.0f}", f"{s / v:>7.2f}") if v else (f"{'-':>15}", f"{'-':>7}")
    e, g = fmt(eager), fmt(graph)
    print(f"{label:<27}{b:>6} {mode:<5}{s:>12,.0f}{e[0]}{e[1]}{g[0]}{g[1]}")
if not cohort:
    print("(no gpu-bench lines: the bench step failed)")
print("\n".join(extra))
PY
for r in "${results[@]}"; do
	case "$r" in PASS) ;; *) exit 1 ;; esac
done
