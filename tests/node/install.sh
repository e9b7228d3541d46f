#!/usr/bin/env bash
# The host packages the node tier runs, at the Debian versions pinned in versions.env: containerd
# (and its ctr), runc, and libc6-dev (images.sh links pause.c statically). Each is installed with
# apt-get only when it is missing or at another version; one that cannot be is named, with the
# version wanted. Needs root when something is to be installed; prints what it did.
#
#   tests/node/install.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=versions.env
source "$here/versions.env"

wanted=("containerd=$CONTAINERD_VERSION" "runc=$RUNC_VERSION" "libc6-dev=$LIBC6_DEV_VERSION")
missing=()
for spec in "${wanted[@]}"; do
	package=${spec%%=*} version=${spec#*=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$package" 2>/dev/null || true)
	if [[ $have == "install ok installed $version" ]]; then
		echo "node install: $package $version present" >&2
	else
		echo "node install: $package wanted at $version, found: ${have:-not installed}" >&2
		missing+=("$spec")
	fi
done
((${#missing[@]} > 0)) || exit 0
((EUID == 0)) || { echo "node install: root is needed to install ${missing[*]}" >&2; exit 1; }
# One at a time, so that a failure names its package.
for spec in "${missing[@]}"; do
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --allow-downgrades "$spec" >&2; then
		echo "node install: cannot install ${spec%%=*} at ${spec#*=} (apt-get update? a newer Debian point release?)" >&2
		exit 1
	fi
done
