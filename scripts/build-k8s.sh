#!/usr/bin/env bash
# Builds the Kubernetes and etcd server binaries the multi-node tests and the
# cluster demo run, and what make conformance adds (kube-proxy, CoreDNS, the
# upstream e2e test binary with ginkgo, agnhost), from source through the Go
# module proxy, into a cache outside the tree. A binary already in the cache
# is reused.
#
#   scripts/build-k8s.sh [kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl|etcd|
#                         kube-proxy|coredns|e2e.test|ginkgo|agnhost|regression-issue-74839]...
#
# With no argument it builds kube-apiserver and etcd. It prints the cache dir.
# NODEBRIDGE_K8S_CACHE overrides the cache dir.
set -euo pipefail

K8S_VERSION=v1.36.3
STAGING_VERSION=v0.36.3
ETCD_VERSION=v3.6.8
COREDNS_VERSION=v1.14.2
cache=${NODEBRIDGE_K8S_CACHE:-${HOME:-/root}/.cache/nodebridge/k8s-$K8S_VERSION}
mkdir -p "$cache/bin"

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(kube-apiserver etcd)

# One build at a time per cache: parallel test packages may call this together.
exec 9>"$cache/.lock"
flock 9

# k8s_module makes the scratch module that requires k8s.io/kubernetes.
k8s_module() {
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
}

# k8s_ldflags stamps the release into what version.Get() reports: the e2e
# framework and kubectl compare it with the server's.
k8s_ldflags() {
	local ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=36"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "$ldflags"
}

build_k8s() {
	k8s_module
	local pkg=$1 out=$2
	(cd "$cache/src-k8s" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$out.tmp" "$pkg")
	mv "$out.tmp" "$out"
}

# build_agnhost builds agnhost and puts beside it the key and certificate
# its porter serves TLS with, which upstream's image holds as /localhost.crt
# and /localhost.key.
build_agnhost() {
	build_k8s k8s.io/kubernetes/test/images/agnhost "$1"
	local dir
	dir=$(cd "$cache/src-k8s" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' k8s.io/kubernetes)
	cp "$dir/test/images/agnhost/porter/localhost.crt" "$dir/test/images/agnhost/porter/localhost.key" "$(dirname "$1")/"
	chmod 0644 "$(dirname "$1")/localhost.crt" "$(dirname "$1")/localhost.key"
}

# build_e2e builds the upstream e2e test binary with only the sig-network
# suites (test/e2e/network, its netpol, and test/e2e/common/network, which
# the e2e package pulls in): the same specs as the full binary's, in about
# half its build time.
build_e2e() {
	k8s_module
	local dir="$cache/src-k8s/e2enetwork"
	mkdir -p "$dir"
	e2e_main >"$dir/network_test.go"
	(cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go test -c -trimpath -ldflags "$(k8s_ldflags)" -o "$1.tmp" .)
	mv "$1.tmp" "$1"
}

e2e_main() {
	cat <<'GO'
// Package e2enetwork is the upstream Kubernetes e2e suite reduced to its
// sig-network specs; flags and behaviour are those of e2e.test.
package e2enetwork

import (
	"flag"
	"os"
	"testing"

	"k8s.io/kubernetes/test/e2e"
	"k8s.io/kubernetes/test/e2e/framework"
	"k8s.io/kubernetes/test/e2e/framework/config"
	"k8s.io/kubernetes/test/e2e/framework/testfiles"
	manifests "k8s.io/kubernetes/test/e2e/testing-manifests"
	fixtures "k8s.io/kubernetes/test/fixtures"

	_ "k8s.io/kubernetes/test/e2e/feature"
	_ "k8s.io/kubernetes/test/e2e/framework/debug/init"
	_ "k8s.io/kubernetes/test/e2e/framework/node/init"
	_ "k8s.io/kubernetes/test/e2e/network"
	_ "k8s.io/kubernetes/test/e2e/network/netpol"
)

func TestMain(m *testing.M) {
	config.CopyFlags(config.Flags, flag.CommandLine)
	framework.RegisterCommonFlags(flag.CommandLine)
	framework.RegisterClusterFlags(flag.CommandLine)
	flag.Parse()
	testfiles.AddFileSource(manifests.GetE2ETestingManifestsFS())
	testfiles.AddFileSource(fixtures.GetTestFixturesFS())
	framework.AfterReadingAllFlags(&framework.TestContext)
	os.Exit(m.Run())
}

func TestE2E(t *testing.T) { e2e.RunE2ETests(t) }
GO
}

# coredns_main is the main package of the CoreDNS build: the plugins of
# kubeadm's Corefile, and hosts, which the e2e DNS specs' own servers use
# (the server's plugin order is set here as CoreDNS's generated list would).
coredns_main() {
	cat <<'GO'
// Command coredns is CoreDNS with only the plugins a kubeadm Corefile and
// the Kubernetes e2e DNS specs use.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

func main() {
	dnsserver.Directives = []string{"reload", "prometheus", "errors", "log", "health", "ready",
		"hosts", "kubernetes", "loadbalance", "cache", "loop", "forward"}
	coremain.Run()
}
GO
}

build_coredns() {
	local src="$cache/src-coredns"
	mkdir -p "$src"
	[ -f "$src/go.mod" ] ||
		printf 'module nodebridge.local/corednsbuild\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' "$COREDNS_VERSION" >"$src/go.mod"
	coredns_main >"$src/main.go"
	(cd "$src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$1.tmp" .)
	mv "$1.tmp" "$1"
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

# A binary built from a source this script writes is built again when that
# source changed: its checksum is kept beside the binary.
source_of() {
	case $1 in
	coredns) coredns_main ;;
	e2e.test) e2e_main ;;
	agnhost) declare -f build_agnhost ;;
	esac
}

for b in "${want[@]}"; do
	out="$cache/bin/$b"
	sum=
	src=$(source_of "$b")
	[ -z "$src" ] || sum=$(echo "$src" | sha256sum | cut -d' ' -f1)
	if [ -x "$out" ] && [ "$(cat "$out.source" 2>/dev/null)" = "$sum" ]; then
		continue
	fi
	echo "build-k8s: building $b (cached in $cache/bin)" >&2
	case $b in
	etcd) build_etcd "$out" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kubectl | kube-proxy)
		build_k8s "k8s.io/kubernetes/cmd/$b" "$out" ;;
	agnhost) build_agnhost "$out" ;;
	regression-issue-74839) build_k8s k8s.io/kubernetes/test/images/regression-issue-74839 "$out" ;;
	ginkgo) build_k8s github.com/onsi/ginkgo/v2/ginkgo "$out" ;;
	e2e.test) build_e2e "$out" ;;
	coredns) build_coredns "$out" ;;
	*) echo "build-k8s: unknown binary $b" >&2; exit 2 ;;
	esac
	if [ -n "$sum" ]; then echo "$sum" >"$out.source"; else rm -f "$out.source"; fi
done
echo "$cache"
