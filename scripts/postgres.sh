#!/usr/bin/env bash
# A PostgreSQL server for the tests and benchmarks of the district server on PostgreSQL:
# installs the distribution's package if missing, starts its `main` cluster, makes the role
# `ikd` (password `ikd`, may create databases; each test makes and drops its own database) and
# prints the line that points the tests at it. Use: eval "$(scripts/postgres.sh)"
set -euo pipefail
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  echo "==> apt-get install postgresql" >&2
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
cluster() { pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"'; }
if [ -z "$(cluster)" ]; then
  $sudo_cmd pg_createcluster "$ver" main >&2
fi
port=$(cluster | awk '{print $3}')
if ! cluster | grep -q online; then
  echo "==> starting PostgreSQL $ver on port $port" >&2
  $sudo_cmd pg_ctlcluster "$ver" main start >&2
fi
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ikd') THEN
    CREATE ROLE ikd LOGIN CREATEDB PASSWORD 'ikd';
  END IF;
END $$;
SQL
echo "export IKD_TEST_POSTGRES=postgres://ikd:ikd@127.0.0.1:$port/postgres"
