# The node tier's pinned inputs (sourced by images.sh, cni.sh, node.sh): the versions, the tier's
# cache folders, and a Debian package's files fetched without installing it.
# shellcheck shell=bash
node_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../k8s/paths.sh
source "$node_here/../k8s/paths.sh"
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$node_here/versions.env"

# deb_extract PACKAGE VERSION DEST: the package's files under DEST, through apt's own client.
deb_extract() {
	local tmp
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/tether-deb.XXXXXX")
	# apt drops to _apt for the download, which cannot write a root-owned mktemp folder.
	chmod 755 "$tmp"
	if ! (cd "$tmp" && apt-get download -q "$1=$2" >"$tmp/log" 2>&1); then
		cat "$tmp/log" >&2
		echo "deb: cannot download $1=$2 (apt-get update? a newer Debian point release?)" >&2
		rm -rf "$tmp"
		return 1
	fi
	dpkg-deb -x "$tmp"/*.deb "$3"
	rm -rf "$tmp"
}
