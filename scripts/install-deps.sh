#!/usr/bin/env bash
# Installs what `make demo` and `make test` need, and only what is missing:
# the Debian packages for ip/bridge, iptables, nft, ping and modprobe, and,
# in a tools dir outside the tree, cnitool plus the reference bridge and
# host-local plugins (to compare nodebridge against), the reference portmap
# and bandwidth (chained after nodebridge in the multi-node lab) and loopback (which
# containerd's CRI runs in the kubelet cluster tests), plus containerd, crun and
# busybox-static for those tests; gcc and the static C library for the cgo,
# static flanneld that scripts/build-flannel.sh builds. Safe to run again.
# It never touches the machine's network configuration.
#
#   scripts/install-deps.sh [conformance]
#
# With "conformance" it adds what make conformance packs into the upstream
# e2e test images beside busybox: dig, curl, OpenBSD nc, GNU wget and iperf.
set -euo pipefail

tools="${NODEBRIDGE_TOOLS:-$HOME/.cache/nodebridge/bin}"

# command -> Debian package that provides it
declare -A pkg_of=(
	[ip]=iproute2
	[bridge]=iproute2
	[iptables]=iptables
	[iptables-save]=iptables
	[iptables-restore]=iptables
	[nft]=nftables
	[ping]=iputils-ping
	[modprobe]=kmod
	[unshare]=util-linux
	[nsenter]=util-linux
	[containerd]=containerd
	[ctr]=containerd
	[crun]=crun
	[busybox]=busybox-static
	[gcc]=gcc
)
if [ "${1:-}" = conformance ]; then
	pkg_of+=([dig]=bind9-dnsutils [nslookup]=bind9-dnsutils [curl]=curl [nc.openbsd]=netcat-openbsd [iperf]=iperf [wget]=wget [ldd]=libc-bin)
fi

# file -> Debian package that provides it, for what is not a command
declare -A pkg_of_file=(
	[/usr/lib/x86_64-linux-gnu/libc.a]=libc6-dev
)

missing_packages() {
	local cmd f
	{
		for cmd in "${!pkg_of[@]}"; do
			if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
				echo "${pkg_of[$cmd]}"
			fi
		done
		for f in "${!pkg_of_file[@]}"; do
			[ -e "$f" ] || echo "${pkg_of_file[$f]}"
		done
	} | sort -u
}

install_packages() {
	local missing
	mapfile -t missing < <(missing_packages)
	if [ "${#missing[@]}" -eq 0 ]; then
		echo "install-deps: Debian packages: all present"
		return
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages ${missing[*]}, and installing them needs root" >&2
		exit 1
	fi
	echo "install-deps: installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Installing containerd must not start the machine's own containerd
	# service (it would write /var/lib/containerd): the tests run their own,
	# inside node namespaces. policy-rc.d answering 101 tells the package
	# scripts not to start services; one already there is left alone.
	local policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		trap "rm -f $policy" EXIT
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# go_tool NAME MODULE_PATH@VERSION installs one Go binary into $tools when absent.
go_tool() {
	local name=$1 pkg=$2
	if [ -x "$tools/$name" ]; then
		echo "install-deps: $name: present in $tools"
		return
	fi
	echo "install-deps: go install $pkg -> $tools"
	GOBIN="$tools" go install "$pkg"
}

install_packages
mkdir -p "$tools"
go_tool cnitool github.com/containernetworking/cni/cnitool@v1.3.1
go_tool host-local github.com/containernetworking/plugins/plugins/ipam/host-local@v1.9.1
go_tool bridge github.com/containernetworking/plugins/plugins/main/bridge@v1.9.1
go_tool portmap github.com/containernetworking/plugins/plugins/meta/portmap@v1.9.1
go_tool bandwidth github.com/containernetworking/plugins/plugins/meta/bandwidth@v1.9.1
go_tool loopback github.com/containernetworking/plugins/plugins/main/loopback@v1.9.1
echo "install-deps: done (tools in $tools)"
