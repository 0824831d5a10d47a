# verdict: `make demo` brings up the whole stack with simulated traffic;
# `make test` installs what the tests need and runs them all.
#
# There is no Go module at the root (go.work joins them), so targets loop
# over the modules.

SHELL   := /bin/bash
GO      ?= go
MODULES  = $(shell $(GO) list -m -f '{{.Dir}}')
BIN     := bin

.PHONY: all build test demo bench deps vet fmt tidy oracle clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/verdict ./services/verdict
	$(GO) build -o $(BIN)/ingest ./services/ingest
	$(GO) build -o $(BIN)/notifier ./services/notifier

# deps installs what running and testing need on a Debian machine: Debian's
# ClickHouse server (the tests start private servers from its binary),
# Prometheus (prometheus and promtool: services/verdict/deploy_test.go checks
# deploy/prometheus and scrapes `verdict up`), docker-compose (`docker-compose
# config` of docker-compose.yml) and Chromium (the readout page's browser
# test). Idempotent and quiet: apt-get runs only when a command is missing.
# The packages' services (prometheus, its node exporter) are neither wanted
# nor started: the tests run their own processes on free ports.
DEB_DEPS := promtool:prometheus prometheus:prometheus docker-compose:docker-compose chromium:chromium

deps:
	@bash scripts/install-clickhouse.sh
	@set -eu; missing=""; \
	for d in $(DEB_DEPS); do \
		command -v "$${d%%:*}" >/dev/null 2>&1 || missing="$$missing $${d#*:}"; \
	done; \
	missing="$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' ')"; \
	if [ -z "$${missing// /}" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: missing Debian packages: $$missing; install them: apt-get install -y $$missing" >&2; exit 1; \
	fi; \
	echo "deps: installing $$missing" >&2; \
	policy=/usr/sbin/policy-rc.d; created=; \
	if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' >$$policy; chmod +x $$policy; created=1; fi; \
	status=0; \
	{ DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } || status=$$?; \
	if [ -n "$$created" ]; then rm -f $$policy; fi; \
	if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi; \
	if [ $$status != 0 ]; then echo "deps: apt-get install $$missing failed (exit $$status)" >&2; exit $$status; fi

test: deps
	@test -z "$$(gofmt -l $(MODULES))" || { gofmt -l $(MODULES); echo "gofmt: files above need formatting"; exit 1; }
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) vet ./...); done
	@set -e; for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) test -race -count=1 -timeout 15m ./...); done

demo: deps build
	$(BIN)/verdict demo

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

clean:
	rm -rf $(BIN)
