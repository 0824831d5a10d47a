#!/bin/sh
# install-clickhouse.sh makes sure a clickhouse-server binary is installed, so
# that verdict (and its tests) can start a private ClickHouse server.
#
# verdict runs its own server process, with a generated config, ports of its
# choosing and data under $VERDICT_DATA_DIR; the Debian package's service
# (clickhouse-server.service, /etc/clickhouse-server) is not needed and is not
# started here. Idempotent: does nothing when a server binary is there.
#
# Debian, as root: apt-get installs Debian's package (ClickHouse 18.16).
# Elsewhere: prints what to install and exits 1.
set -eu

found() {
	command -v clickhouse-server >/dev/null 2>&1 ||
		[ -x /usr/sbin/clickhouse-server ] ||
		[ -x /usr/bin/clickhouse-server ] ||
		command -v clickhouse >/dev/null 2>&1
}

if found; then
	exit 0
fi

if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
	echo "install-clickhouse: installing Debian's clickhouse-server and clickhouse-client" >&2
	export DEBIAN_FRONTEND=noninteractive
	# The package's service would listen on 9000 and 8123, the ports verdict
	# defaults to. policy-rc.d keeps the package from starting it in
	# containers and sysvinit; under systemd it is stopped and disabled below.
	# Either way verdict runs its own server and never needs this one.
	policy=/usr/sbin/policy-rc.d
	created_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		created_policy=1
	fi
	status=0
	{ apt-get update -q && apt-get install -y -q clickhouse-server clickhouse-client; } || status=$?
	if [ -n "$created_policy" ]; then
		rm -f "$policy"
	fi
	if [ "$status" != 0 ]; then
		echo "install-clickhouse: apt-get failed (exit $status)" >&2
		exit "$status"
	fi
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
	fi
	found && exit 0
	echo "install-clickhouse: clickhouse-server still not found after apt-get install" >&2
	exit 1
fi

cat >&2 <<'MSG'
install-clickhouse: no clickhouse-server binary found, and this is not Debian as root.
Install a ClickHouse server, then run again:
  Debian/Ubuntu (as root):  apt-get update && apt-get install -y clickhouse-server clickhouse-client
  other systems:            https://clickhouse.com/docs/install (the single "clickhouse" binary works too)
Or point verdict at a running server: VERDICT_CLICKHOUSE_ADDR=host:9000
MSG
exit 1
