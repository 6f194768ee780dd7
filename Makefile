# nodebridge: build, install, demo and test. Run as root on Debian for demo
# and test; both install what they need through scripts/install-deps.sh.

VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO        ?= go
BIN       := bin/nodebridge
AGENT     := bin/nodebridge-agent
CNI_BIN   ?= /opt/cni/bin
SBIN      ?= /usr/local/sbin
LDFLAGS   := -s -w -X main.buildVersion=$(VERSION)

.PHONY: all build install deps k8s image demo demo-cluster demo-lab test conformance bench fuzz lint check clean

all: build

# The image without Docker or a registry: an OCI archive in _out/image/ for
# ctr images import (scripts/build-image.sh); it prints the image's name.
image: deps
	VERSION=$(VERSION) bash scripts/build-image.sh

# The plugin and the agent are separate binaries: only the agent links client-go.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nodebridge
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(AGENT) ./cmd/nodebridge-agent

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(CNI_BIN)/nodebridge
	install -D -m 0755 $(AGENT) $(DESTDIR)$(SBIN)/nodebridge-agent

deps:
	bash scripts/install-deps.sh

demo: deps build
	bash scripts/demo.sh

# k8s: the Kubernetes servers, kubectl and etcd the multi-node and cluster tests
# run, built from source once into a cache outside the tree
# (~/.cache/nodebridge/k8s-v1.36.3).
k8s:
	bash scripts/build-k8s.sh kube-apiserver etcd kube-controller-manager kube-scheduler kubelet kubectl >/dev/null

# demo-cluster: three real Kubernetes nodes on this machine (containerd and
# kubelet in each node's netns and mount namespace, nodebridge-agent, the
# control plane with controller-manager and scheduler), a pod on each,
# kubectl get, routes, cross-node pings, the time per step; then everything
# is removed. Needs root. KEEP=1 keeps it up until ^C, or SIGTERM to the pid
# it prints.
KEEP ?=
demo-cluster: deps k8s
	$(GO) run ./hack/demo-cluster $(if $(filter 1 yes true,$(KEEP)),-keep)

# demo-lab: the multi-node lab without kubelets (real kube-apiserver + etcd,
# three nodes with agents, a pod on each through cnitool), then removes
# everything. Needs root. DEMO_FLAGS=-hold keeps it up until ^C.
DEMO_FLAGS ?=
demo-lab: deps k8s
	$(GO) run ./hack/demo-lab $(DEMO_FLAGS)

test: deps k8s
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=30s

# conformance: the upstream Kubernetes sig-network e2e specs (e2e.test of
# v1.36.3 with ginkgo; the specs of testdata/conformance/focus.txt less
# skip.txt) on the kubelet cluster with nodebridge from deploy/nodebridge.yaml,
# kube-proxy and CoreDNS: twice in a row per kube-proxy mode (iptables,
# nftables). CONFORMANCE_FLAGS=-plugins=nodebridge,reference adds the
# reference bridge + host-local as a baseline. JUnit files and the summary in _out/conformance.
# Needs root; e2e.test, kube-proxy, CoreDNS and agnhost build into the k8s
# cache once.
CONFORMANCE_FLAGS ?=
conformance: k8s
	bash scripts/install-deps.sh conformance
	$(GO) run ./hack/conformance $(CONFORMANCE_FLAGS)

# fuzz: each fuzz target for FUZZTIME (make fuzz FUZZTIME=1h), seeded from
# testdata/corpus. A failing input is saved under the package's
# testdata/fuzz/<target>/ and replayed by every later go test. scripts/fuzz.sh
# says why a bare "context deadline exceeded" at the deadline still passes.
FUZZTIME  ?= 5m
FUZZFLAGS ?= -fuzzminimizetime 10s
FUZZ       = GO=$(GO) FUZZTIME=$(FUZZTIME) FUZZFLAGS="$(FUZZFLAGS)" bash scripts/fuzz.sh

fuzz:
	$(FUZZ) pkg/bridge FuzzParse
	$(FUZZ) pkg/bridge FuzzVerified
	$(FUZZ) pkg/ipam FuzzEntry
	$(FUZZ) pkg/ipam FuzzStoreFiles
	$(FUZZ) pkg/agent FuzzComputeDesired

# bench: nodebridge against the reference bridge + host-local v1.9.1 (which
# the deps script installs into BENCH_TOOLS), exec'd as a runtime does inside throwaway
# netns, on idle nodes and on busy ones (kube-proxy's iptables or nftables
# rules for 3,000 Services, one Service re-synced every 0.5 s); prints tables
# and targets and writes BENCH_JSON. Needs root. Extra driver flags go in
# BENCH_FLAGS (e.g. BENCH_FLAGS="-n 50 -parallel 0", or "-busy-services 1000
# -busy-resync 1s -busy-n 50", or "-busy=" for idle nodes only).
# agentscale also runs the agent and flanneld v0.28.10 side by side, flanneld
# built once by scripts/build-flannel.sh into ~/.cache/nodebridge;
# AGENT_BENCH_FLAGS=-flannel= skips that. tunnel measures TCP throughput and
# latency node to node, pod to pod host-gw and pod to pod through VXLAN
# (TUNNEL_FLAGS, e.g. "-rounds 9 -duration 5s"). policyscale puts 1,000 pods
# and 200 NetworkPolicies on the agent's node and times Pod, Namespace and
# policy changes to enforcement with real connections, with the policy
# table's kernel objects and the agent's RSS (POLICY_FLAGS, e.g. "-rounds 9").
BENCH_TOOLS ?= $(or $(NODEBRIDGE_TOOLS),$(HOME)/.cache/nodebridge/bin)
BENCH_BIN   ?= _out/bench/bin
BENCH_JSON  ?= _out/bench.json
BENCH_FLAGS ?=
AGENT_BENCH_JSON  ?= _out/bench-agent.json
AGENT_BENCH_FLAGS ?=
PODSTART_JSON  ?= _out/bench-podstart.json
PODSTART_FLAGS ?=
TUNNEL_JSON  ?= _out/bench-tunnel.json
TUNNEL_FLAGS ?=
POLICY_JSON  ?= _out/bench-policy.json
POLICY_FLAGS ?=

bench: build k8s
	NODEBRIDGE_TOOLS=$(BENCH_TOOLS) bash scripts/install-deps.sh
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BENCH_BIN)/ ./bench/nop ./bench/floor-add ./bench/ipam-op ./bench/driver ./bench/agentscale ./bench/podstart ./bench/tunnel ./bench/policyscale ./cmd/nodebridge-agent
	$(BENCH_BIN)/driver -plugin $(BIN) -tools $(BENCH_TOOLS) -bin $(BENCH_BIN) -json $(BENCH_JSON) $(BENCH_FLAGS)
	flanneld="$$(bash scripts/build-flannel.sh)" && \
		$(BENCH_BIN)/agentscale -agent $(BENCH_BIN)/nodebridge-agent -flannel "$$flanneld" -json $(AGENT_BENCH_JSON) $(AGENT_BENCH_FLAGS)
	$(BENCH_BIN)/podstart -tools $(BENCH_TOOLS) -json $(PODSTART_JSON) $(PODSTART_FLAGS)
	$(BENCH_BIN)/tunnel -json $(TUNNEL_JSON) $(TUNNEL_FLAGS)
	NODEBRIDGE_TOOLS=$(BENCH_TOOLS) $(BENCH_BIN)/policyscale -json $(POLICY_JSON) $(POLICY_FLAGS)

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; else echo "staticcheck not on PATH: skipped"; fi

check: lint test

clean:
	rm -rf bin _out
