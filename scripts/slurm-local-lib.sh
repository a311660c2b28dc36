# Helpers shared by slurm-local-start.sh and slurm-local-stop.sh; sourced,
# not run.

# pid_of PIDFILE prints the pid the file holds; fails when there is none
# (a daemon removes its file as it exits, so the file may vanish any time).
pid_of() {
	local pid
	pid="$({ tr -dc 0-9 < "$1"; } 2> /dev/null)" || return 1
	[ -n "$pid" ] && echo "$pid"
}

# running PID NAME: PID runs and is NAME. A zombie counts as dead (a daemon
# killed with -9 lingers as one for seconds), and the name check keeps a
# reused pid from passing for the daemon.
running() {
	local state comm
	state="$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null)" || return 1
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	comm="$(cat "/proc/$1/comm" 2> /dev/null)" || return 1
	[ "$comm" = "$2" ]
}

# alive PIDFILE NAME: the daemon of PIDFILE runs.
alive() {
	local pid
	pid="$(pid_of "$1")" && running "$pid" "$2"
}

# wait_for WHAT SECONDS CMD...: polls CMD every 0.1 s until it succeeds;
# says what it waited for when time runs out.
wait_for() {
	local what="$1" deadline=$((SECONDS + $2))
	shift 2
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "slurm-local: gave up waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

# node_state prints sinfo's state of the local node (idle, mixed, idle*, …).
node_state() {
	sinfo -h -n "$node" -o %T 2> /dev/null
}

node_idle() {
	[ "$(node_state)" = idle ]
}

# node_up: the controller answers and the node responds (a trailing * means
# it does not), busy or not.
node_up() {
	case "$(node_state)" in
	idle | mixed | allocated | completing) return 0 ;;
	esac
	return 1
}
