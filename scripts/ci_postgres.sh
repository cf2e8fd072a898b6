#!/usr/bin/env bash
# Install Debian's PostgreSQL, start it on loopback, and create a user and database for the
# storage test (tests/test_postgres.py). Prints the URL to use; exits non-zero if it cannot.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
$SUDO pg_ctlcluster "$version" main start >&2 2>/dev/null || true
for _ in $(seq 1 30); do
  $SUDO su postgres -c "psql -qtc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
$SUDO su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sweep') THEN CREATE ROLE sweep LOGIN PASSWORD 'sweep-secret'; END IF; END \\\$\\\$;\"" >&2
$SUDO su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname = 'sweep'\"" | grep -q 1 \
  || $SUDO su postgres -c "createdb -O sweep sweep" >&2
echo "postgresql://sweep:sweep-secret@127.0.0.1:5432/sweep"
