# Changes a node makes outside its folder, each written to a changes file before it is made and
# undone from it in reverse order (sourced by node.sh). Lines: `cgroup PATH`, `dir PATH`,
# `file PATH`, `link NAME`, `sysctl KEY VALUE`.
# shellcheck shell=bash

# The hierarchy whose cgroup.procs tracks a node's processes: pids on v1, the unified tree on v2.
host_track_root() {
	if [[ -d /sys/fs/cgroup/pids ]]; then echo /sys/fs/cgroup/pids; else echo /sys/fs/cgroup; fi
}

# host_cgroup_create CHANGES NAME: /NAME in every mounted hierarchy (kubelet's cgroupRoot must
# exist in each), and NAME/runtime in the tracking one for the node's own processes.
host_cgroup_create() {
	local changes=$1 name=$2 h
	for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
		[[ -f $h/cgroup.procs && ! -L $h ]] || continue
		if [[ -e $h/$name ]]; then
			echo "host: cgroup $h/$name exists already (a node left behind? node.sh stop)" >&2
			return 1
		fi
		echo "cgroup $h/$name" >>"$changes"
		mkdir "$h/$name"
		# A new cpuset has no CPUs or memory nodes until given its parent's.
		if [[ -f $h/cpuset.cpus ]]; then
			cat "$h/cpuset.cpus" >"$h/$name/cpuset.cpus"
			cat "$h/cpuset.mems" >"$h/$name/cpuset.mems"
		fi
	done
	mkdir -p "$(host_track_root)/$name/runtime"
}

# host_dir_create CHANGES PATH: records the topmost folder of PATH that does not exist yet.
host_dir_create() {
	local changes=$1 path=$2 top=
	local p=$path
	while [[ ! -e $p ]]; do
		top=$p
		p=$(dirname "$p")
	done
	[[ -z $top ]] || echo "dir $top" >>"$changes"
	mkdir -p "$path"
}

# host_link_record CHANGES NAME: a network link the node's CNI config will create.
host_link_record() {
	if ip link show "$2" >/dev/null 2>&1; then
		echo "host: link $2 exists already (another node of this name?)" >&2
		return 1
	fi
	echo "link $2" >>"$1"
}

host_sysctl_record() { echo "sysctl $2 $(sysctl -n "$2")" >>"$1"; }

# host_run_in_cgroup CGROUP PIDFILE LOG COMMAND...: COMMAND in its own session, in CGROUP/runtime.
host_run_in_cgroup() {
	local procs pidfile=$2 log=$3
	procs="$(host_track_root)/$1/runtime/cgroup.procs"
	shift 3
	# shellcheck disable=SC2016 # $$ and $@ belong to the child shell
	setsid sh -c 'echo $$ >"$0" && exec "$@"' "$procs" "$@" >"$log" 2>&1 </dev/null &
	echo $! >"$pidfile"
}

# The pids in the node's cgroup tree, one per line.
host_cgroup_pids() {
	local root
	root="$(host_track_root)/$1"
	[[ -d $root ]] || return 0
	find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null
}

# host_cgroup_kill NAME: SIGKILL every process in the node's cgroup tree until none is left.
host_cgroup_kill() {
	local pids
	for _ in $(seq 1 100); do
		pids=$(host_cgroup_pids "$1")
		[[ -n $pids ]] || return 0
		# shellcheck disable=SC2086 # one pid a word
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	echo "host: processes left in cgroup $1: $(host_cgroup_pids "$1" | tr '\n' ' ')" >&2
	return 1
}

# Mount points under DIR, deepest first.
host_mounts_under() {
	awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

host_unmount_under() {
	local m status=0
	for _ in 1 2 3; do
		for m in $(host_mounts_under "$1"); do umount "$m" 2>/dev/null || true; done
	done
	for m in $(host_mounts_under "$1"); do
		echo "host: still mounted: $m" >&2
		status=1
	done
	return $status
}

# host_undo CHANGES: every recorded change undone, the last made first; goes on past a failure.
host_undo() {
	local kind a b status=0
	while read -r kind a b; do
		case $kind in
		sysctl) sysctl -qw "$a=$b" || status=1 ;;
		dir) rm -rf "$a" || status=1 ;;
		file) rm -f "$a" || status=1 ;;
		link) if ip link show "$a" >/dev/null 2>&1; then ip link del "$a" || status=1; fi ;;
		cgroup) if [[ -d $a ]]; then find "$a" -depth -type d -exec rmdir {} + || status=1; fi ;;
		*) echo "host: unknown change '$kind $a $b'" >&2; status=1 ;;
		esac
	done < <(tac "$1")
	return $status
}
