#!/bin/sh
# install-clickhouse.sh installs the two ClickHouse engines verdict can start
# a private server from (VERDICT_CLICKHOUSE_LOCAL), and the tests run
# against both:
#
#  - chdb: ClickHouse 26.7, chDB's libchdb.so from the npm registry
#    (@chdb/lib-linux-x64-gnu, pinned below with its integrity), unpacked to
#    .cache/chdb/ in this checkout (git ignores it; 178 MB download, 566 MB
#    on disk). Needs npm.
#  - server: a clickhouse-server binary; on Debian, as root, Debian's package
#    (ClickHouse 18.16) with its clickhouse-client.
#
# verdict runs its own server process, with ports of its choosing and data
# under $VERDICT_DATA_DIR; the Debian package's service
# (clickhouse-server.service, /etc/clickhouse-server) is not needed and is not
# started here. Idempotent: does nothing for what is there already.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)

# chDB: the version and the npm integrity (sha512 of the tarball) it must have.
CHDB_PACKAGE=@chdb/lib-linux-x64-gnu
CHDB_VERSION=26.7.3-stable.1
CHDB_INTEGRITY=sha512-XP97mMqnc5tZpKQywR8N7cLTsHNiTmHr30pC5mzo3jWmukjKn2IBa60c2B/gWUNcuFjOMjWoorQICCqBVj5wpw==
chdb_dir=$root/.cache/chdb

install_chdb() {
	if [ -f "$chdb_dir/libchdb.so" ] && [ "$(cat "$chdb_dir/VERSION" 2>/dev/null)" = "$CHDB_VERSION" ]; then
		return 0
	fi
	if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
		echo "install-clickhouse: npm is missing: install Node.js and npm (Debian: apt-get install -y nodejs npm) for ClickHouse 26 (chDB)" >&2
		return 1
	fi
	echo "install-clickhouse: installing ClickHouse 26.7 ($CHDB_PACKAGE@$CHDB_VERSION from npm) in $chdb_dir" >&2
	mkdir -p "$chdb_dir"
	tmp=$(mktemp -d "$chdb_dir/download.XXXXXX")
	(cd "$tmp" && npm pack --silent --loglevel=error "$CHDB_PACKAGE@$CHDB_VERSION" >/dev/null)
	tarball=$(ls "$tmp"/*.tgz)
	got=sha512-$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write(c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
	if [ "$got" != "$CHDB_INTEGRITY" ]; then
		echo "install-clickhouse: $tarball has integrity $got, want $CHDB_INTEGRITY" >&2
		rm -rf "$tmp"
		return 1
	fi
	tar -xzf "$tarball" -C "$tmp" package/libchdb.so
	mv "$tmp/package/libchdb.so" "$chdb_dir/libchdb.so"
	echo "$CHDB_VERSION" >"$chdb_dir/VERSION"
	rm -rf "$tmp"
}

install_chdb

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
