#!/bin/bash
# CPU training throughput on MNIST of MODEL (mlp: 784-512-512-10; lenet:
# LeNet-5 as configs/mnist_lenet.yaml; batch 128 per process, SGD
# momentum), Cohort against PyTorch (Debian's python3-torch) in the same run:
# PROCS processes (DDP over Gloo for PyTorch, cohort launch for Cohort) of
# THREADS threads each. Prints both results and the ratio.
# Usage: scripts/bench/train-cpu.sh [THREADS [PROCS [MODEL]]]   (after make build)
set -euo pipefail
threads="${1:-1}"
procs="${2:-1}"
model="${3:-mlp}"
case "$model" in
mlp | lenet) ;;
*) echo "bench: MODEL must be mlp or lenet, got $model" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/../.." && pwd)"
anchors="${COHORT_ANCHORS:-$root/../shared/anchors}"
cd "$root"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
	echo "bench: installing python3-torch (Debian) for the PyTorch anchor" >&2
	sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-torch >/dev/null
fi
./scripts/fetch-mnist.sh >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), $model, $procs process(es) × $threads thread(s), 1 epoch" >&2
/usr/bin/python3 "$anchors/mlp_mnist_torch.py" --model "$model" --procs "$procs" --threads "$threads" --epochs 1 \
	--data-dir "${COHORT_DATA_DIR:-$HOME/.cache/cohort/mnist}" | tee "$out/torch.jsonl" >&2

echo "== Cohort $(bin/cohort version | head -1), $model, $procs process(es) × $threads thread(s), 1 epoch" >&2
OPENBLAS_NUM_THREADS="$threads" bin/cohort launch --nproc-per-node "$procs" -- train -c "configs/mnist_$model.yaml" num_epochs=1 \
	--threads "$threads" --log-freq 0 --output-dir "$out/run" >&2
cp "$out/run/metrics.jsonl" "$out/cohort.jsonl"

/usr/bin/python3 - "$out" "$threads" "$procs" "$model" <<'PY'
import json, sys
out, threads, procs, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch = [json.loads(l) for l in open(f"{out}/torch.jsonl")]
t_epoch = next(r for r in torch if r.get("bench") == "train_epoch")
cohort = [json.loads(l) for l in open(f"{out}/cohort.jsonl")]
c_train = next(r for r in cohort if r["phase"] == "train")
c_test = next((r for r in cohort if r["phase"] == "test"), {})
row = {"bench": "train_cpu", "model": model, "threads": threads, "procs": procs,
       "torch_samples_per_s": t_epoch["samples_per_s"],
       "cohort_samples_per_s": round(c_train["samples_per_s"], 1),
       "ratio_cohort_over_torch": round(c_train["samples_per_s"] / t_epoch["samples_per_s"], 3),
       "torch_test_acc": t_epoch["test_acc"], "cohort_test_acc": c_test.get("accuracy")}
print(json.dumps(row))
print(f"{model} samples/s over the whole epoch, {procs} process(es) × {threads} thread(s): PyTorch {row['torch_samples_per_s']:.0f}, "
      f"Cohort {row['cohort_samples_per_s']:.0f}, ratio {row['ratio_cohort_over_torch']:.2f}x", file=sys.stderr)
PY
