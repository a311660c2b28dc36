#!/bin/bash
# All-reduce busbw, 2 ranks on this machine, in one run: Cohort's TCP ring
# (cohort launch … bench allreduce) against Gloo (PyTorch), OpenMPI over TCP
# and OpenMPI over shared memory — the anchors in ../shared/anchors.
# Installs python3-torch and OpenMPI (Debian) when missing.
# Usage: scripts/bench/allreduce.sh [SIZES]   (default 4K,64K,1M,16M,64M; after make build)
set -euo pipefail
sizes="${1:-4K,64K,1M,16M,64M}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
anchors="${COHORT_ANCHORS:-$root/../shared/anchors}"
cd "$root"
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
need=""
/usr/bin/python3 -c 'import torch' 2>/dev/null || need="$need python3-torch"
command -v mpicc >/dev/null || need="$need openmpi-bin libopenmpi-dev"
[ -z "$need" ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $need >/dev/null
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
mpicc -O2 -o "$out/allreduce_mpi" "$anchors/allreduce_mpi.c"

echo "== cohort (TCP ring, 2 processes)" >&2
bin/cohort launch --nproc-per-node 2 -- bench allreduce --sizes "$sizes" --json "$out/cohort.jsonl" >&2
echo "== OpenMPI TCP" >&2
MALLOC_MMAP_MAX_=0 mpirun --allow-run-as-root --oversubscribe -np 2 -x MALLOC_MMAP_MAX_ \
	--mca btl tcp,self --mca btl_tcp_if_include lo "$out/allreduce_mpi" --sizes "$sizes" --label tcp > "$out/mpi-tcp.jsonl"
echo "== OpenMPI shared memory" >&2
MALLOC_MMAP_MAX_=0 mpirun --allow-run-as-root --oversubscribe -np 2 -x MALLOC_MMAP_MAX_ \
	"$out/allreduce_mpi" --sizes "$sizes" --label shm > "$out/mpi-shm.jsonl"
echo "== Gloo" >&2
/usr/bin/python3 "$anchors/allreduce_gloo.py" --nprocs 2 --sizes "$sizes" > "$out/gloo.jsonl"

/usr/bin/python3 - "$out" <<'PY'
import json, sys, glob, os
out = sys.argv[1]
def load(name):
    rows = {}
    for line in open(os.path.join(out, name)):
        line = line.strip()
        if line.startswith("{"):
            r = json.loads(line)
            rows[r["bytes"]] = r
    return rows
c, tcp, shm, gloo = load("cohort.jsonl"), load("mpi-tcp.jsonl"), load("mpi-shm.jsonl"), load("gloo.jsonl")
print(f"{'bytes':>10} {'cohort':>8} {'mpi-tcp':>8} {'mpi-shm':>8} {'gloo':>8} {'c/tcp':>6} {'c/shm':>6} {'c/gloo':>6}   busbw GB/s, 2 ranks")
for b in sorted(c):
    bw = [c[b]["busbw_GBps"], tcp[b]["busbw_GBps"], shm[b]["busbw_GBps"], gloo[b]["busbw_GBps"]]
    print(f"{b:>10} {bw[0]:>8.3f} {bw[1]:>8.3f} {bw[2]:>8.3f} {bw[3]:>8.3f} {bw[0]/bw[1]:>6.2f} {bw[0]/bw[2]:>6.2f} {bw[0]/bw[3]:>6.2f}")
    print(json.dumps({"bench": "allreduce_compare", "bytes": b, "cohort": bw[0], "openmpi_tcp": bw[1], "openmpi_shm": bw[2], "gloo": bw[3]}), file=sys.stderr)
PY
