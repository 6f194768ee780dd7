#!/usr/bin/env bash
# Builds the Kubernetes and etcd server binaries the multi-node tests and the
# cluster demo run, from source through the Go module proxy, into a cache
# outside the tree. A binary already in the cache is reused.
#
#   scripts/build-k8s.sh [kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl|etcd]...
#
# With no argument it builds kube-apiserver and etcd. It prints the cache dir.
# NODEBRIDGE_K8S_CACHE overrides the cache dir.
set -euo pipefail

K8S_VERSION=v1.36.3
STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.8
cache=${NODEBRIDGE_K8S_CACHE:-${HOME:-/root}/.cache/nodebridge/k8s-$K8S_VERSION}
mkdir -p "$cache/bin"

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kube-apiserver etcd)

# One build at a time per cache: parallel test packages may call this together.
exec 9>"$cache/.lock"
flock 9

build_k8s() {
	local src="$cache/src-k8s"
	if [ ! -f "$src/go.mod" ]; then
		mkdir -p "$src"
		{
			echo "module nodebridge.local/k8sbuild"
			echo
			echo "go 1.26"
			echo
			echo "require k8s.io/kubernetes $K8S_VERSION"
			echo
			# k8s.io/kubernetes points its staging modules at ./staging; the
			# published modules of the same release stand in for them.
			for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go \
				cloud-provider cluster-bootstrap code-generator component-base component-helpers \
				controller-manager cri-api cri-client cri-streaming csi-translation-lib \
				dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator \
				kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils \
				pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming; do
				echo "replace k8s.io/$m => k8s.io/$m $STAGING_VERSION"
			done
		} >"$src/go.mod.tmp"
		mv "$src/go.mod.tmp" "$src/go.mod"
	fi
	local pkg=$1 out=$2
	local ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=36"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
	mv "$out.tmp" "$out"
}

build_etcd() {
	local src="$cache/src-etcd"
	if [ ! -f "$src/main.go" ]; then
		mkdir -p "$src"
		printf 'module nodebridge.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$src/go.mod"
		cat >"$src/main.go" <<'GO'
// Command etcd is the etcd server, built from its server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
	fi
	(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1.tmp" .)
	mv "$1.tmp" "$1"
}

for b in "${want[@]}"; do
	out="$cache/bin/$b"
	[ -x "$out" ] && continue
	echo "build-k8s: building $b (cached in $cache/bin)" >&2
	case $b in
	etcd) build_etcd "$out" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubectl)
		build_k8s "k8s.io/kubernetes/cmd/$b" "$out" ;;
	*) echo "build-k8s: unknown binary $b" >&2; exit 2 ;;
	esac
done
echo "$cache"
