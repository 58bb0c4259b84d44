# grpckit make targets. `make dev` runs the local stack; `make test` runs every test.
# Two modules, one workspace (go.work): the root module (examples, CLI, test rigs)
# and the kit (kit/go.mod). From the root, ./... is the root module's packages
# and ./kit/... the kit's: every target names both.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CACHE   := $(CURDIR)/.cache
TOOLBIN := $(CACHE)/bin
export PATH := $(TOOLBIN):$(PATH)

BUF_VERSION                := v1.57.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0

.PHONY: all build test check-tracked test-short dev consul generate tools vet clean bench bench-balancer bench-overload test-overload fuzz chaos

all: build

PKGS := ./... ./kit/...

# FIGURES is where bench, bench-balancer, bench-overload and chaos (the spike) write their
# charts as SVG (ignored by git; the README's are in docs/figures/).
FIGURES ?= $(CURDIR)/figures

# drawn runs a kit command that writes its charts as $(FIGURES)/$(1)/$(2).json
# (kit/internal/figdata), draws them into $(FIGURES) with internal/cmd/figures,
# and exits with the command's status. $(1): subdirectory, $(2): JSON name,
# $(3): the command and its flags.
define drawn
	rm -f $(FIGURES)/$(1)/$(2).json
	s=0; $(3) -figures $(FIGURES)/$(1) || s=$$?; \
	if [ -f $(FIGURES)/$(1)/$(2).json ]; then go run ./internal/cmd/figures -o $(FIGURES) $(FIGURES)/$(1)/$(2).json; fi; \
	exit $$s
endef

build:
	go build $(PKGS)

## consul: make a consul binary available (PATH, else a cached pinned build).
consul:
	@scripts/ensure-consul.sh >/dev/null

## test: the full suite with the race detector, against a real Consul, a
## throwaway PostgreSQL and headless Chromium (installed from Debian's packages
## when missing); the proto tools serve the test that compares grpckit's in-process code generation with them.
## The overload simulations (ALONE) measure how a server behaves under load: they run after the
## rest, alone, as a process starved of CPU by the packages beside it is not the healthy server they
## assume.
ALONE := github.com/grpckit/grpckit/kit/internal/overloadsim
test: check-tracked consul tools
	CONSUL_BIN="$$(scripts/ensure-consul.sh)" \
	POSTGRES_BIN_DIR="$$(scripts/ensure-postgres.sh)" \
	CHROMIUM_BIN="$$(scripts/ensure-chromium.sh)" \
	go test -race -count=1 -timeout 20m $$(go list $(PKGS) | grep -vxF '$(ALONE)')
	go test -race -count=1 -timeout 5m $(ALONE)

## check-tracked: fail when git tracks an executable binary or a file over 2 MB.
check-tracked:
	scripts/check-tracked.sh

## test-short: unit tests only (no Consul, PostgreSQL or Chromium).
test-short:
	go test -race -short $(PKGS)

## dev: the local stack of grpckit.yaml (Consul, 2 user, 2 greeter, the gateway on :8080) in the foreground; Ctrl-C stops it.
dev: consul
	go build -o $(TOOLBIN)/grpckit ./cmd/grpckit
	CONSUL_BIN="$$(scripts/ensure-consul.sh)" exec $(TOOLBIN)/grpckit dev

## bench: one run (about 17 minutes): the cost rule (kit's default chains, and traced, against bare grpc-go with
## the same deadline); raw TCP, bare grpc-go, round_robin / outlier detection / kit_weighted over 5, kit's
## default chains; then kit's layers one by one. Charts (latency CDFs, ratios to the base) in FIGURES.
bench:
	go run ./internal/cmd/bench -figures $(FIGURES)

## chaos: real processes, a real Consul and a real two-datacenter Consul cluster broken under load, then a
## sudden 3x spike on a service of fixed capacity; exits non-zero when a target is missed. Each scenario's
## chart (calls and failed calls over time, the faults marked) and the spike's in FIGURES.
chaos: consul
	CONSUL_BIN="$$(scripts/ensure-consul.sh)" go run ./internal/cmd/chaos -figures $(FIGURES)
	$(call drawn,spike,benchoverload,go run ./kit/internal/cmd/benchoverload -run spike)

## fuzz: every fuzz target of both modules for FUZZTIME each (default 60s).
fuzz:
	POSTGRES_BIN_DIR="$$(scripts/ensure-postgres.sh)" FUZZTIME="$${FUZZTIME:-60s}" scripts/fuzz.sh

## bench-overload: a server of fixed capacity at 0.5x to 10x load, capacity halving, three backends of
## which one is overloaded, a spike: bare grpc-go, kit before its overload layer and kit now side by side.
## Charts (goodput and p99 against offered load, the halving and the spike over time) in FIGURES.
bench-overload:
	$(call drawn,overload,benchoverload,go run ./kit/internal/cmd/benchoverload)

## test-overload: the overload targets asserted at full length, without -race (run it on a quiet machine).
test-overload:
	cd kit && go test -count=1 -run TestTargets ./internal/overloadsim -overload.full -v

## bench-balancer: kit_weighted beside round_robin, least_request and outlier detection (Pick+Done, throughput, slow instances, hedging, fault scenarios; ~7 min).
## Charts in FIGURES, per policy: each backend's share over time in the slow-instance run and through its recovery,
## the latency CDFs of the slow-instance and graded scenarios; per fault scenario, the faulty backend's share and the
## failed calls over time.
bench-balancer:
	$(call drawn,balancer,benchbalancer,go run ./kit/internal/cmd/benchbalancer)

## tools: the pinned proto tools, built from the Go module proxy into .cache/bin.
tools: $(TOOLBIN)/buf $(TOOLBIN)/protoc-gen-go $(TOOLBIN)/protoc-gen-go-grpc

$(TOOLBIN)/buf:
	GOBIN=$(TOOLBIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLBIN)/protoc-gen-go:
	GOBIN=$(TOOLBIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLBIN)/protoc-gen-go-grpc:
	GOBIN=$(TOOLBIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## generate: lint the protos and regenerate the committed Go code.
generate: tools
	buf lint
	buf generate
	gofmt -l proto kit/internal/testpb

vet:
	go vet $(PKGS)

clean:
	rm -rf $(CACHE)/bin $(CACHE)/dev
