# verdict: `make demo` brings up the whole stack with simulated traffic;
# `make test` installs what the tests need and runs them all.
#
# There is no Go module at the root (go.work joins them), so targets loop
# over the modules, or name each module's packages (DIR/...).

SHELL   := /bin/bash
GO      ?= go
MODULES  = $(shell $(GO) list -m -f '{{.Dir}}')
BIN     := bin
# Go stamps no vcs.revision in workspace mode (go.work), so the build
# passes it: verdict_build_info then names the commit ("-dirty" for a
# modified tree; nothing outside a git checkout).
REVISION := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS  := $(if $(REVISION),-ldflags "-X github.com/verdictlabs/verdict/pkg/web.Revision=$(REVISION)")

.PHONY: all build test cluster-test demo bench deps test-deps vet fmt tidy oracle clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(LDFLAGS) -o $(BIN)/verdict ./services/verdict
	$(GO) build $(LDFLAGS) -o $(BIN)/ingest ./services/ingest
	$(GO) build $(LDFLAGS) -o $(BIN)/notifier ./services/notifier
	$(GO) build $(LDFLAGS) -o $(BIN)/rules ./services/rules
	$(GO) build $(LDFLAGS) -o $(BIN)/gateway ./services/gateway

# deps installs what running verdict needs on a Debian machine: Debian's
# ClickHouse server (`verdict up` starts a private one from its binary).
# test-deps adds what the tests need: Prometheus, docker-compose, Chromium,
# ZooKeeper.
deps:
	@bash scripts/install-clickhouse.sh

test-deps:
	@bash scripts/install-test-deps.sh

test: test-deps
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); echo "gofmt: files above need formatting"; exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@# One go test over every module, so that packages of different modules
	@# run side by side (two at a time here) instead of module after module.
	$(GO) test -race -count=1 -timeout 30m $(addsuffix /...,$(MODULES))

demo: deps build
	$(BIN)/verdict demo

# cluster-test runs, alone, the scale-out on this machine that `make test`
# runs among the others: a three-node NATS cluster, a two-shard ClickHouse
# cluster and two processes of every service, some of them killed.
cluster-test: test-deps
	cd services/verdict && $(GO) test -run 'TestScaleOut' -count=1 -v -timeout 15m .

bench: deps
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done

vet:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done

fmt:
	gofmt -w $(MODULES)

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

# oracle regenerates the statistics golden files from SciPy/statsmodels
# (Debian's python3-scipy and python3-statsmodels).
oracle:
	/usr/bin/python3 scripts/oracle/stats_oracle.py
	/usr/bin/python3 scripts/oracle/cuped_oracle.py
	/usr/bin/python3 scripts/oracle/cuped_events_oracle.py

clean:
	rm -rf $(BIN)
