#!/bin/bash
# Run once by the clickhouse-server image on an empty volume
# (/docker-entrypoint-initdb.d), as the admin of CLICKHOUSE_USER: the two
# users of the docker-compose stack, neither an admin.
#
#   verdict  verdict's services: its database only (tables, rows, the
#            ALTERs of migrations), and temporary tables, which queries with
#            external data (the units a look reads afresh) need.
#   grafana  the dashboards: SELECT on verdict's tables, readonly=1, so no
#            query from a dashboard can change anything.
set -eu
esc() { printf "%s" "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }
clickhouse client --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery <<SQL
CREATE DATABASE IF NOT EXISTS verdict;
CREATE USER IF NOT EXISTS verdict IDENTIFIED WITH sha256_password BY '$(esc "$VERDICT_CLICKHOUSE_PASSWORD")';
GRANT SHOW, SELECT, INSERT, ALTER, CREATE TABLE, CREATE VIEW, DROP TABLE, DROP VIEW, TRUNCATE, OPTIMIZE ON verdict.* TO verdict;
GRANT CREATE DATABASE ON verdict.* TO verdict;
GRANT CREATE TEMPORARY TABLE ON *.* TO verdict;
GRANT SELECT ON system.* TO verdict;
CREATE USER IF NOT EXISTS grafana IDENTIFIED WITH sha256_password BY '$(esc "$GRAFANA_CLICKHOUSE_PASSWORD")' SETTINGS readonly = 1;
GRANT SELECT ON verdict.* TO grafana;
SQL
