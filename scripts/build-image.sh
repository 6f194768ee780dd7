#!/usr/bin/env bash
# Builds the nodebridge image without Docker or a registry, as an OCI image
# layout archive in _out/image/, and prints its name and path. The image is
# what the Dockerfile builds: the agent as the entrypoint; the plugin and
# the reference portmap and loopback in /opt/nodebridge/bin for the
# DaemonSet's init container to copy into the host's /opt/cni/bin; Debian
# 12's iptables (both variants) and nftables with their libraries; and
# busybox for the init container's shell. From the Go module proxy and
# Debian packages only (apt-get download, dpkg-deb -x).
#
#   make image                      # ghcr.io/nodebridge/nodebridge:$(git describe --always --dirty)
#   IMAGE=registry.example/nb make image
#   ctr -n k8s.io images import _out/image/nodebridge-<version>.tar
set -euo pipefail
cd "$(dirname "$0")/.."

version=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
tag="${IMAGE:-ghcr.io/nodebridge/nodebridge}:${version}"
out="${IMAGE_OUT_DIR:-_out/image}/nodebridge-${version}.tar"
mtime=$(git log -1 --format=%ct 2>/dev/null || echo 0)
# Debian's packages for iptables and nftables and everything they depend on
# (apt-cache depends --recurse --no-recommends, without debconf's tools).
packages=(iptables nftables netbase gcc-12-base libbsd0 libc6 libedit2 libgcc-s1 libgmp10 libip4tc2
	libip6tc2 libjansson4 libmd0 libmnl0 libnetfilter-conntrack3 libnfnetlink0 libnftables1
	libnftnl11 libtinfo6 libxtables12)

work=$(mktemp -d "${TMPDIR:-/tmp}/nodebridge-image.XXXXXX")
chmod 755 "$work" # apt-get download writes as user _apt
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{opt/nodebridge/bin,usr/local/bin,tmp,bin,etc} "$work/debs"
chmod 1777 "$rootfs/tmp"

ldflags="-s -w -X main.buildVersion=${version}"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$rootfs/opt/nodebridge/bin/nodebridge" ./cmd/nodebridge
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$rootfs/usr/local/bin/nodebridge-agent" ./cmd/nodebridge-agent
for p in meta/portmap main/loopback; do
	CGO_ENABLED=0 GOBIN="$rootfs/opt/nodebridge/bin" go install -trimpath -ldflags "-s -w" \
		"github.com/containernetworking/plugins/plugins/$p@v1.9.1"
done

(cd "$work/debs" && apt-get download -q "${packages[@]}" >/dev/null)
for deb in "$work"/debs/*.deb; do
	dpkg-deb -x "$deb" "$rootfs"
done
# What the packages' maintainer scripts would do: the default alternatives
# (nft, as Debian's), and the loader's cache.
for t in iptables iptables-restore iptables-save ip6tables ip6tables-restore ip6tables-save; do
	ln -sf "xtables-nft-multi" "$rootfs/usr/sbin/$t"
done
ldconfig -r "$rootfs"
# The init container's shell and tools (and the uninstall's) from busybox.
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for t in sh cp mv rm ls cat mkdir grep touch sleep; do
	ln -sf busybox "$rootfs/bin/$t"
done

go run ./hack/ociimage -rootfs "$rootfs" -tag "$tag" -entrypoint /usr/local/bin/nodebridge-agent -mtime "$mtime" -o "$out"
echo "image $tag"
echo "archive $out ($(du -h "$out" | cut -f1))"
