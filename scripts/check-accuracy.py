#!/usr/bin/python3
"""check-accuracy.py METRICS_JSONL MIN: prints a run's test accuracy by epoch
and exits 0 when the last one is at least MIN (1 otherwise, or when the run
has no test phase)."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
acc = [r["accuracy"] for r in rows if r.get("phase") == "test"]
print(f"test accuracy by epoch: {acc}; required at the end: {sys.argv[2]}")
sys.exit(0 if acc and acc[-1] >= float(sys.argv[2]) else 1)
