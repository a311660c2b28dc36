#!/usr/bin/env python3
"""Reads a cohort TensorBoard event file (or a run's tensorboard/ folder)
with TensorBoard's own EventAccumulator and prints every scalar, so the Go
writer is checked against the real reader. Needs `tensorboard` (present on
the GPU machine's python, not on the Go dev machines).

    python3 scripts/tb-read.py OUT/tensorboard --expect train/loss --expect test/accuracy

Exits 1 when no scalar was read or an --expect tag is missing.
"""
import argparse
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="event file or folder holding event files")
    ap.add_argument("--expect", action="append", default=[], metavar="TAG",
                    help="a scalar tag that must be present (repeatable)")
    args = ap.parse_args()

    acc = EventAccumulator(args.path, size_guidance={"scalars": 0})  # 0: keep all
    acc.Reload()
    tags = sorted(acc.Tags()["scalars"])
    for tag in tags:
        points = ", ".join(f"{e.step}:{e.value:.6g}" for e in acc.Scalars(tag))
        print(f"{tag}: {points}")
    missing = [t for t in args.expect if t not in tags]
    if not tags or missing:
        print(f"tb-read: {len(tags)} scalar tags; missing {missing}", file=sys.stderr)
        return 1
    print(f"tb-read: ok, {len(tags)} scalar tags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
