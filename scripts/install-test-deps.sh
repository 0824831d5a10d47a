#!/usr/bin/env bash
# Installs what the tests need beyond ClickHouse when missing: the official
# analytics client libraries from npm (Segment, RudderStack, GrowthBook), and
# from Debian's packages Prometheus (prometheus and promtool:
# services/verdict/deploy_test.go checks deploy/prometheus and scrapes
# `verdict up`), docker-compose (`config` of docker-compose.yml), Chromium
# (the readout page's browser test) and ZooKeeper (the ClickHouse cluster
# tests run it for ON CLUSTER DDL and replication).
# Idempotent and quiet: apt-get runs only when a command is missing. The
# packages' own services are neither wanted nor started: the tests run their
# own processes on free ports.
set -euo pipefail

bash "$(dirname "$0")/install-clickhouse.sh"

# The official analytics client libraries that services/verdict/clients_test.go
# points at verdict's HTTP ingest, unchanged, from the npm registry, at the
# versions of the committed package-lock.json.
clients="$(dirname "$0")/../services/verdict/testdata/node"
if [ ! -d "$clients/node_modules/@segment/analytics-node" ]; then
	if ! command -v npm >/dev/null 2>&1; then
		echo "npm is missing: install Node.js (apt-get install -y nodejs npm) for the client library tests" >&2
		exit 1
	fi
	echo "installing the client libraries in $clients (npm ci)" >&2
	(cd "$clients" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

declare -A package=([promtool]=prometheus [prometheus]=prometheus [docker-compose]=docker-compose [chromium]=chromium)
missing=()
for cmd in "${!package[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${package[$cmd]}")
done
[ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "missing Debian packages: ${missing[*]}; install them: apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "installing ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
created=
if [ ! -e "$policy" ]; then # keep the packages from starting their services
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created=1
fi
status=0
{ DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
[ -n "$created" ] && rm -f "$policy"
if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
if [ $status != 0 ]; then
	echo "apt-get install ${missing[*]} failed (exit $status)" >&2
	exit $status
fi
