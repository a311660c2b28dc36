#!/bin/bash
# The chaos suite, long version: the TestChaos* tests of cmd/cohort with
# TRIALS kill -9 trials (default 20) and the long faults enabled
# (COHORT_CHAOS_LONG=1: handshake flood; unreachable data plane, which needs
# root and iproute2), then a table of fault, outcome, detection/stop time
# (max and median over the trials) and exit code.
# Usage: scripts/chaos/run.sh [TRIALS]
#   COHORT_CHAOS_SEED=N replays the random kill moments of an earlier run.
# Exit status: 0 when every fault was handled as docs/reliability.md says.
set -euo pipefail
trials="${1:-20}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
work="$(mktemp -d)"
go test -c -o "$work/cohort.test" ./cmd/cohort
report="$work/report.tsv"
log="$work/test.log"
rc=0
(cd cmd/cohort && COHORT_CHAOS_TRIALS="$trials" COHORT_CHAOS_LONG=1 COHORT_CHAOS_REPORT="$report" \
	"$work/cohort.test" -test.run '^TestChaos' -test.count 1 -test.timeout 60m -test.v >"$log" 2>&1) || rc=$?

echo "chaos suite: $(date -u '+%F %H:%M UTC'), $(nproc) cores, $(uname -sr), $trials kill -9 trials"
grep -m1 'chaos seed' "$log" | sed 's/^ *[a-z_]*\.go:[0-9]*: /  /' || true
echo
{
	printf 'fault\truns\toutcome\tmax\tmedian\texit\n'
	[ -f "$report" ] && cat "$report"
} | column -t -s $'\t'
skipped=$(grep -E -- '--- SKIP' "$log" | sed 's/^ *--- SKIP: //' || true)
[ -z "$skipped" ] || { echo; echo "skipped:"; echo "$skipped"; }
if [ "$rc" != 0 ]; then
	echo
	echo "failed:"
	grep -E -- '--- FAIL' "$log" || echo "  (the test binary exited $rc; see the log)"
	echo "full log: $log"
	exit 1
fi
rm -rf "$work"
