#!/bin/bash
# The GPU machine's check, run from a copy of the repo with the binaries
# `make cuda` built (bin/cuda.test, bin/gpu.test, optionally bin/cohort-cuda);
# it builds nothing and changes no GPU setting. It runs the CUDA kernel and
# GEMM tests, the GPU-vs-CPU model tests, Cohort's throughput benchmark and
# the PyTorch anchor in the same session, then prints a PASS/FAIL table and
# Cohort vs PyTorch samples/s. Every step has a timeout; the total stays
# under 5 minutes. Logs go to $OUT/gpu-check (the device tool's output
# folder) or /tmp/gpu-check.
#
# The anchor is shared/anchors/torch_gpu_anchor.py: found in $ANCHOR, or
# shared/anchors/ or .carry/anchors/ under the repo root (copy it into an
# ignored folder of the checkout and carry that folder: ../shared is not
# sent to the device machine).
set -u
cd "$(dirname "$0")/.."
log=${OUT:-/tmp}/gpu-check
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

step nvidia-smi 15 nvidia-smi -L
step cuda.test 50 bin/cuda.test -test.v -test.count=1
step gpu.test 50 bin/gpu.test -test.v -test.count=1 -test.skip '^TestThroughput$'
step bench 50 env COHORT_GPU_BENCH=1 bin/gpu.test -test.v -test.count=1 -test.run '^TestThroughput$'
if [ -x bin/cohort-cuda ]; then
	# Informational, not a check: a build with the openblas tag also needs
	# libopenblas.so.0, which the GPU machine may lack.
	echo "=== version (informational)"
	timeout 10 bin/cohort-cuda version 2>&1 | tee "$log/version.log" || echo "(bin/cohort-cuda did not start; see above)"
fi
if [ -n "$anchor" ]; then
	step anchor 110 env PYTHONUNBUFFERED=1 python3 "$anchor"
else
	names+=(anchor)
	results+=("FAIL (torch_gpu_anchor.py not found; set ANCHOR or carry shared/anchors)")
fi

echo
echo "=== summary"
for i in "${!names[@]}"; do
	printf '%-12s %s\n' "${names[$i]}" "${results[$i]}"
done
# Cohort's gpu-bench lines against the anchor's JSON lines of the same run.
python3 - "$log/bench.log" "$log/anchor.log" <<'PY'
import json, re, sys
cohort = []
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("gpu-bench "):
        cohort.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
torch = {}
try:
    for line in open(sys.argv[2], errors="replace"):
        if line.startswith("{"):
            r = json.loads(line)
            if "samples_per_s" in r:
                torch[(r["model"], r["batch"], r["variant"])] = r["samples_per_s"]
except FileNotFoundError:
    pass
print(f"{'model':<18}{'batch':>6} {'math':<5}{'cohort/s':>12}{'torch eager/s':>15}{'ratio':>7}{'torch graph/s':>15}{'ratio':>7}")
for c in cohort:
    model = "mlp" if c["hidden"] == "512" else "mlp-big"
    b, mode, s = int(c["batch"]), c["math"], float(c["samples_per_s"])
    eager = torch.get((model, b, mode))
    graph = torch.get((model, b, "graph")) if mode == "fp32" else None
    fmt = lambda v: (f"{v:>15,.0f}", f"{s / v:>7.2f}") if v else (f"{'-':>15}", f"{'-':>7}")
    e, g = fmt(eager), fmt(graph)
    print(f"{'784-%s-%s-10' % (c['hidden'], c['hidden']):<18}{b:>6} {mode:<5}{s:>12,.0f}{e[0]}{e[1]}{g[0]}{g[1]}")
if not cohort:
    print("(no gpu-bench lines: the bench step failed)")
PY
for r in "${results[@]}"; do
	case "$r" in PASS) ;; *) exit 1 ;; esac
done
