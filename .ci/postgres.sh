#!/usr/bin/env bash
# A PostgreSQL server for the results database's integration tests: Debian's
# postgresql package, a cluster listening on 127.0.0.1, a role and a database.
# Prints one line for the caller to eval:
#   eval "$(bash .ci/postgres.sh)"   # sets COMPAT_TEST_POSTGRES_URL
# Everything else goes to stderr. Run as root. Running it again reuses what is there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
ROLE=${COMPAT_PG_ROLE:-compat}
PASSWORD=${COMPAT_PG_PASSWORD:-compat}
DATABASE=${COMPAT_PG_DATABASE:-compat_test}
started=$(date +%s)
say() { echo "postgres.sh: $* ($(( $(date +%s) - started ))s)" >&2; }

installed() { compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; }
if ! installed; then
  say "installing postgresql"
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -1)

# The package creates cluster "main" unless told not to; make it if it is missing.
if ! pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main"' | grep -q .; then
  say "creating cluster $version/main"
  pg_createcluster "$version" main >&2
fi
read -r port status < <(pg_lsclusters --no-header | awk -v v="$version" '$1 == v && $2 == "main" {print $3, $4}')
if [[ $status != online* ]]; then
  say "starting cluster $version/main on port $port"
  # listen on 127.0.0.1 only: tests connect over TCP with a password
  pg_ctlcluster "$version" main start -o "-c listen_addresses=127.0.0.1" >&2
fi
for _ in $(seq 60); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >&2 || {
  tail -20 "/var/log/postgresql/postgresql-$version-main.log" >&2
  exit 1
}

say "role $ROLE and database $DATABASE"
cd /tmp  # psql as postgres must be able to enter the working directory
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -p "$port" -d postgres \
  -v role="$ROLE" -v password="$PASSWORD" -v database="$DATABASE" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'database', :'role')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
SQL
say "ready"
echo "export COMPAT_TEST_POSTGRES_URL=postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
