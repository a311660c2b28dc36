#!/bin/bash
# Stops the local SLURM cluster of scripts/slurm-local-start.sh: cancels its
# jobs, then ends slurmd, slurmctld and the munged it started (found by their
# pid files, never by name) and waits until they are gone. Nothing running
# is fine. A munged that was already running before the start is left alone.
#
# Usage: scripts/slurm-local-stop.sh
# Env:   COHORT_SLURM_DIR  as for the start script [/var/spool/cohort-slurm]
set -euo pipefail
export PATH="/usr/sbin:/sbin:/usr/bin:/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "slurm-local-stop: needs root" >&2; exit 2; }

base="${COHORT_SLURM_DIR:-/var/spool/cohort-slurm}"
node="$(hostname -s)"
# shellcheck source=scripts/slurm-local-lib.sh
. "$(dirname "$0")/slurm-local-lib.sh"

# stop PIDFILE NAME: TERM, then KILL after 10 s; returns once the process
# is dead or a zombie. The pid is read once: the daemon may delete its file
# before it has exited.
stop() {
	local pid
	if ! pid="$(pid_of "$1")" || ! running "$pid" "$2"; then
		rm -f "$1"
		return 0
	fi
	kill -TERM "$pid" 2> /dev/null || true
	if ! wait_for "$2 ($pid) to exit after TERM" 10 gone "$pid" "$2"; then
		kill -KILL "$pid" 2> /dev/null || true
		wait_for "$2 ($pid) to exit after KILL" 10 gone "$pid" "$2"
	fi
	rm -f "$1"
	echo "slurm-local-stop: stopped $2 ($pid)"
}

gone() {
	! running "$@"
}

# Every job on this cluster belongs to the tests that started it; ending
# them first lets slurmd take its steps down cleanly.
if alive "$base/slurmctld.pid" slurmctld; then
	squeue -h -o %i 2> /dev/null | xargs -r scancel 2> /dev/null || true
fi
stop "$base/slurmd.pid" slurmd
stop "$base/slurmctld.pid" slurmctld
stop "$base/munge/munged.pid" munged
