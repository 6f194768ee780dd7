# The nodebridge image: the agent (its entrypoint) plus the CNI plugin and
# the reference portmap and loopback, which the DaemonSet's init container
# copies into the host's /opt/cni/bin. See deploy/nodebridge.yaml. Without
# Docker, `make image` builds the same image as an OCI archive
# (scripts/build-image.sh).
#
#   docker build -t ghcr.io/nodebridge/nodebridge:$(git describe --always --dirty) --build-arg VERSION=$(git describe --always --dirty) .

FROM golang:1.26-bookworm AS build
ARG VERSION=dev
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Static binaries: the plugin is exec'd on the host, outside this image.
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/nodebridge ./cmd/nodebridge \
 && go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/nodebridge-agent ./cmd/nodebridge-agent \
 && GOBIN=/out go install -trimpath -ldflags "-s -w" github.com/containernetworking/plugins/plugins/meta/portmap@v1.9.1 \
 && GOBIN=/out go install -trimpath -ldflags "-s -w" github.com/containernetworking/plugins/plugins/main/loopback@v1.9.1

FROM debian:bookworm-slim
# iptables and nft for the agent's and portmap's rules. Debian's iptables
# ships both variants (xtables-legacy-multi, xtables-nft-multi); the agent
# runs the one the host's rules are in (iptables-legacy-save, ...), chosen
# at start, so the alternatives' default (nft) does not matter to it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/nodebridge /out/portmap /out/loopback /opt/nodebridge/bin/
COPY --from=build /out/nodebridge-agent /usr/local/bin/nodebridge-agent
ENTRYPOINT ["/usr/local/bin/nodebridge-agent"]
