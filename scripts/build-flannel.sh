#!/usr/bin/env bash
# Builds flanneld, the reference the agent is benchmarked against
# (bench/agentscale -flannel), from the Go module proxy into a cache outside
# the tree. A binary already in the cache is reused.
#
#   scripts/build-flannel.sh
#
# It prints the path of the binary. NODEBRIDGE_FLANNEL_CACHE overrides the
# cache dir.
#
# The build is flannel's own `make dist/flanneld` for amd64: cgo on (its UDP
# backend needs it), linked static, no build tags. One dependency differs:
# the proxy refuses github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc
# v1.3.188, so v1.1.0 stands in for it; only flannel's Tencent Cloud backend
# uses it, and the bench runs host-gw.
set -euo pipefail

FLANNEL_VERSION=v0.28.10
TENCENT_VPC=github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc
TENCENT_VPC_VERSION=v1.1.0
cache=${NODEBRIDGE_FLANNEL_CACHE:-${HOME:-/root}/.cache/nodebridge/flannel-$FLANNEL_VERSION}
out="$cache/bin/flanneld"
mkdir -p "$cache/bin"

# One build at a time per cache: two benches may call this together.
exec 9>"$cache/.lock"
flock 9

if [ -x "$out" ]; then
	echo "$out"
	exit 0
fi

# A module of our own that requires flannel: its main package sits at the
# module root, and only the main module's go.mod may replace.
src="$cache/src"
if [ ! -f "$src/go.mod" ]; then
	mkdir -p "$src"
	{
		echo "module nodebridge.local/flannelbuild"
		echo
		echo "go 1.26"
		echo
		echo "require github.com/flannel-io/flannel $FLANNEL_VERSION"
		echo
		echo "replace $TENCENT_VPC => $TENCENT_VPC $TENCENT_VPC_VERSION"
	} >"$src/go.mod.tmp"
	mv "$src/go.mod.tmp" "$src/go.mod"
fi

echo "build-flannel: building flanneld $FLANNEL_VERSION (cached in $cache/bin)" >&2
ldflags="-s -w -X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION -extldflags -static"
(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=1 go build -trimpath -ldflags "$ldflags" \
	-o "$out.tmp" github.com/flannel-io/flannel) >&2 # stdout carries the path alone
mv "$out.tmp" "$out"
echo "$out"
