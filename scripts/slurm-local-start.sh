#!/bin/bash
# Starts a real one-node SLURM cluster on this machine for tests: munged,
# slurmctld and slurmd, without systemd, as root. The node is named after
# `hostname -s` and claims 8 CPUs whatever the core count, so `srun -n 4`
# runs on a 2-core CI machine. Installs the Debian packages when missing.
# A second start while it runs is a no-op; scripts/slurm-local-stop.sh ends it.
#
# Usage: scripts/slurm-local-start.sh
# Env:   COHORT_SLURM_DIR      state, logs and pid files [/var/spool/cohort-slurm]
#        COHORT_SLURM_TIMEOUT  seconds to wait for the node to be idle [30]
#        COHORT_SLURM_FORCE=1  replace an /etc/slurm/slurm.conf we did not write
# Then:  srun -I10 -n 2 env   (-I10 makes an impossible request fail, not queue)
set -euo pipefail
export PATH="/usr/sbin:/sbin:/usr/bin:/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "slurm-local-start: needs root" >&2; exit 2; }

base="${COHORT_SLURM_DIR:-/var/spool/cohort-slurm}"
timeout="${COHORT_SLURM_TIMEOUT:-30}"
conf=/etc/slurm/slurm.conf
marker="# written by cohort scripts/slurm-local-start.sh"
node="$(hostname -s)"
# shellcheck source=scripts/slurm-local-lib.sh
. "$(dirname "$0")/slurm-local-lib.sh"

install_packages() {
	local missing=0 cmd
	for cmd in slurmd slurmctld srun sinfo munged mungekey; do
		command -v "$cmd" > /dev/null || missing=1
	done
	[ "$missing" = 0 ] && return
	echo "slurm-local-start: installing slurmd slurmctld slurm-client munge"
	export DEBIAN_FRONTEND=noninteractive
	local pkgs=(slurmd slurmctld slurm-client munge)
	# The package lists of a fresh container are often empty or stale.
	apt-get install -y --no-install-recommends "${pkgs[@]}" ||
		{ apt-get update && apt-get install -y --no-install-recommends "${pkgs[@]}"; }
}

# The key and the socket directory must belong to munge or munged refuses
# to start.
start_munge() {
	mkdir -p /etc/munge /run/munge "$base/munge" /var/lib/munge /var/log/munge
	if [ ! -s /etc/munge/munge.key ]; then
		mungekey --create --keyfile=/etc/munge/munge.key
	fi
	chown munge:munge /etc/munge /etc/munge/munge.key /run/munge "$base/munge" /var/lib/munge /var/log/munge
	chmod 0700 /etc/munge
	chmod 0600 /etc/munge/munge.key
	chmod 0755 /run/munge
	if alive "$base/munge/munged.pid" munged; then
		return
	fi
	if munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then
		echo "slurm-local-start: using the munged already running (not ours to stop)"
		return
	fi
	rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
	runuser -u munge -- munged --pid-file="$base/munge/munged.pid" --log-file="$base/munge/munged.log"
	wait_for "munged socket" 10 test -S /run/munge/munge.socket.2
}

write_conf() {
	if [ -e "$conf" ] && ! grep -qxF "$marker" "$conf" && [ "${COHORT_SLURM_FORCE:-}" != 1 ]; then
		echo "slurm-local-start: $conf exists and was not written by this script; move it away or set COHORT_SLURM_FORCE=1" >&2
		exit 2
	fi
	mkdir -p /etc/slurm
	# Addresses are pinned to loopback so that no DNS entry for the host name
	# is needed. config_overrides lets slurmd accept CPUs=8 on fewer cores;
	# linuxproc and task/none need no cgroups.
	cat > "$conf.tmp" <<-EOF
		$marker
		ClusterName=cohort
		SlurmctldHost=$node(127.0.0.1)
		SlurmUser=root
		SlurmdUser=root
		AuthType=auth/munge
		CredType=cred/munge
		StateSaveLocation=$base/ctld
		SlurmdSpoolDir=$base/d
		SlurmctldPidFile=$base/slurmctld.pid
		SlurmdPidFile=$base/slurmd.pid
		SlurmctldLogFile=$base/log/slurmctld.log
		SlurmdLogFile=$base/log/slurmd.log
		ProctrackType=proctrack/linuxproc
		TaskPlugin=task/none
		SwitchType=switch/none
		MpiDefault=none
		JobAcctGatherType=jobacct_gather/none
		AccountingStorageType=accounting_storage/none
		SelectType=select/cons_tres
		SelectTypeParameters=CR_CPU
		SchedulerType=sched/backfill
		SlurmdParameters=config_overrides
		ReturnToService=2
		MinJobAge=10
		KillWait=5
		NodeName=$node NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
		PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
	EOF
	mv "$conf.tmp" "$conf"
}

install_packages
mkdir -p "$base/ctld" "$base/d" "$base/log"
if alive "$base/slurmctld.pid" slurmctld && alive "$base/slurmd.pid" slurmd && node_up; then
	echo "slurm-local-start: already running (node $node $(node_state))"
	exit 0
fi
start_munge
write_conf
# -c starts the controller from a clean state: a test cluster has no jobs
# worth recovering, and stale ones would hold the node.
alive "$base/slurmctld.pid" slurmctld || slurmctld -c
alive "$base/slurmd.pid" slurmd || slurmd
if ! wait_for "node $node idle" "$timeout" node_idle; then
	sinfo -N -l >&2 || true
	for f in "$base"/log/*.log "$base"/munge/*.log; do
		echo "--- tail of $f" >&2
		tail -n 20 "$f" >&2
	done
	echo "slurm-local-start: failed; scripts/slurm-local-stop.sh ends what did start" >&2
	exit 1
fi
echo "slurm-local-start: node $node idle (state and logs under $base)"
