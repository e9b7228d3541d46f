# Changes a node makes outside its folder, each written to a changes file before it is made and
# undone from it in reverse order (sourced by node.sh). Lines: `cgroup PATH`, `dir PATH`,
# `file PATH`, `link NAME`, `sysctl KEY VALUE`, `shared DIR`.
#
# Changes every node on this machine needs alike (kubelet's fixed folders, its sysctls) are not a
# node's own: they go in ONE host-level record, $TETHER_NODE_HOST (default /run/tether-node-host:
# `changes` and `users`, the node folders that joined), made by the first node that joins and
# undone by the last that leaves, under flock on $TETHER_NODE_HOST.lock. A node's own record holds
# `shared DIR` for its membership, so undoing it leaves the host-level record.
# shellcheck shell=bash
host_shared=${TETHER_NODE_HOST:-/run/tether-node-host}

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

# host_detach_loops_under DIR: detaches every loop device backed by a file under DIR (kubelet
# binds one to each block volume it maps, and it keeps that file's mount busy).
host_detach_loops_under() {
	local f dev status=0
	for f in /sys/block/loop*/loop/backing_file; do
		[[ -f $f ]] || continue
		[[ $(cat "$f" 2>/dev/null) == "$1/"* ]] || continue
		dev=${f#/sys/block/}
		dev=/dev/${dev%%/*}
		losetup -d "$dev" || status=1
	done
	return $status
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

# host_shared_lock: holds the host-level record's lock (fd host_lock_fd). The last node to leave
# removes the lock file once it is done, so a waiter that then gets the lock of the removed file
# opens the path anew until the file it locked is the one there.
host_shared_lock() {
	# Held already by this shell (a join that failed half-way, its node now stopping): another
	# open of the file would wait for this one forever.
	host_shared_unlock
	while :; do
		exec {host_lock_fd}>>"$host_shared.lock"
		flock -x "$host_lock_fd"
		[[ $(stat -c %d:%i "$host_shared.lock" 2>/dev/null) != "$(stat -L -c %d:%i "/proc/self/fd/$host_lock_fd")" ]] ||
			return 0
		exec {host_lock_fd}>&-
	done
}

host_shared_unlock() {
	if [[ -n ${host_lock_fd:-} ]]; then
		exec {host_lock_fd}>&-
		host_lock_fd=
	fi
}

# The nodes that joined and whose folder still holds a record (a node that never stopped, its
# folder removed, no longer counts).
host_shared_users() {
	local user
	[[ -f $host_shared/users ]] || return 0
	while read -r user; do
		[[ ! -f $user/host-changes ]] || echo "$user"
	done <"$host_shared/users"
}

# host_shared_join CHANGES DIR: node DIR counted in the host-level record, which the first node
# makes: the folders every kubelet and containerd 1.6 write whatever their root (the topmost one
# that did not exist) and the sysctls kubelet sets, read before any kubelet runs.
host_shared_join() {
	local changes=$1 node=$2 users path key
	host_shared_lock
	echo "shared $node" >>"$changes"
	users=$(host_shared_users)
	if [[ -z $users ]]; then
		# Left by nodes that never stopped: back to what was before them, then a new record.
		[[ ! -f $host_shared/changes ]] || host_undo "$host_shared/changes" || true
		mkdir -p "$host_shared"
		: >"$host_shared/changes"
		for path in /var/lib/kubelet/device-plugins /var/log/containers /var/lib/cni /run/containerd/s; do
			host_dir_create "$host_shared/changes" "$path"
		done
		for key in vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
			host_sysctl_record "$host_shared/changes" "$key"
		done
	fi
	{
		[[ -z $users ]] || echo "$users"
		echo "$node"
	} >"$host_shared/users"
	host_shared_unlock
}

# host_shared_leave DIR: node DIR no longer counted; the last node out undoes the host-level
# record and removes it, the lock file last (see host_shared_lock).
host_shared_leave() {
	local node=$1 users status=0
	host_shared_lock
	users=$(host_shared_users | grep -vxF "$node" || true)
	if [[ -n $users ]]; then
		echo "$users" >"$host_shared/users"
	else
		if [[ -f $host_shared/changes ]]; then host_undo "$host_shared/changes" || status=1; fi
		rm -rf "$host_shared"
		rm -f "$host_shared.lock"
	fi
	host_shared_unlock
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
		shared) host_shared_leave "$a" || status=1 ;;
		cgroup) if [[ -d $a ]]; then find "$a" -depth -type d -exec rmdir {} + || status=1; fi ;;
		*) echo "host: unknown change '$kind $a $b'" >&2; status=1 ;;
		esac
	done < <(tac "$1")
	return $status
}
