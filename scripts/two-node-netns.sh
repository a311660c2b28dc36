#!/bin/bash
# Two nodes for real on one machine: two network namespaces joined by a veth
# pair (10.77.0.1 and 10.77.0.2), one `cohort launch --nnodes 2` in each with
# 2 workers, rendezvous through node 0's embedded NATS server and the data
# plane across the veth. Then the same 4 ranks on one node; the final
# checkpoints' SHA-256 must be equal (bit-identical weights).
# Needs root and iproute2. Usage: scripts/two-node-netns.sh CONFIG [overrides…]
# COHORT_BIN overrides the binary (default bin/cohort).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "two-node-netns: needs root (ip netns)" >&2; exit 2; }
cfg="$1"; shift
bin="${COHORT_BIN:-bin/cohort}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
tag="cohort$$"
n0="${tag}n0"; n1="${tag}n1"
work="$(mktemp -d)"
cleanup() {
	ip netns del "$n0" 2>/dev/null || true
	ip netns del "$n1" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$n0"
ip netns add "$n1"
ip link add "${tag}a" type veth peer name "${tag}b"
ip link set "${tag}a" netns "$n0"
ip link set "${tag}b" netns "$n1"
ip -n "$n0" addr add 10.77.0.1/24 dev "${tag}a"
ip -n "$n1" addr add 10.77.0.2/24 dev "${tag}b"
for ns in "$n0" "$n1"; do
	ip -n "$ns" link set lo up
done
ip -n "$n0" link set "${tag}a" up
ip -n "$n1" link set "${tag}b" up

export COHORT_JOB_TOKEN="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
common=(--nnodes 2 --nproc-per-node 2 --rdzv-id two-node --rdzv-timeout 60s)
ip netns exec "$n0" "$bin" launch "${common[@]}" --node-rank 0 --rdzv-host 10.77.0.1 --rdzv-port 29400 -- \
	train -c "$cfg" --output-dir "$work/two-node" --log-freq 0 --threads 1 "$@" > "$work/n0.log" 2>&1 &
pid0=$!
ip netns exec "$n1" "$bin" launch "${common[@]}" --node-rank 1 --rdzv-endpoint nats://10.77.0.1:29400 -- \
	train -c "$cfg" --log-freq 0 --threads 1 "$@" > "$work/n1.log" 2>&1 &
pid1=$!
rc=0
wait "$pid0" || rc=$?
wait "$pid1" || rc=$?
cat "$work/n0.log"
if [ "$rc" != 0 ]; then echo "--- node 1:"; cat "$work/n1.log"; echo "two-node-netns: a node failed (exit $rc)" >&2; exit 1; fi
grep "data plane:" "$work/n0.log"

"$bin" launch --nproc-per-node 4 -- train -c "$cfg" --output-dir "$work/one-node" --log-freq 0 --threads 1 "$@" > "$work/one.log" 2>&1 \
	|| { cat "$work/one.log"; echo "two-node-netns: the one-node run failed" >&2; exit 1; }
last() { ls "$1"/checkpoints/checkpoint-*.json | sort | tail -1; }
sha() { sed -n 's/.*"sha256": "\([0-9a-f]*\)".*/\1/p' "$1"; }
a=$(sha "$(last "$work/two-node")"); b=$(sha "$(last "$work/one-node")")
echo "final weights sha256: two nodes $a, one node $b"
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "two-node-netns: weights differ" >&2; exit 1; }
echo "two-node-netns: OK, 2 nodes × 2 ranks over veth train to the same weights as 4 ranks on one node"
