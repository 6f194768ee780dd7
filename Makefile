# nodebridge: build, install, demo and test. Run as root on Debian for demo
# and test; both install what they need through scripts/install-deps.sh.

VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO        ?= go
BIN       := bin/nodebridge
CNI_BIN   ?= /opt/cni/bin
BENCHTIME ?= 1s
LDFLAGS   := -s -w -X main.buildVersion=$(VERSION)

.PHONY: all build install deps demo test bench lint check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/nodebridge

install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(CNI_BIN)/nodebridge

deps:
	bash scripts/install-deps.sh

demo: deps build
	bash scripts/demo.sh

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# The full comparison against the reference plugins replaces this later; for
# now it runs the Go benchmarks and prints them.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./pkg/...

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck ./...; else echo "staticcheck not on PATH: skipped"; fi

check: lint test

clean:
	rm -rf bin _out
