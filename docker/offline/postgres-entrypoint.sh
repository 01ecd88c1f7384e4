#!/bin/bash
# Entry point of the offline PostgreSQL 15 image (docker/build-offline.sh): what the official
# postgres image's docker-entrypoint.sh does that the compose file relies on. On the first
# start (an empty $PGDATA) it runs initdb with POSTGRES_USER as the superuser and
# POSTGRES_PASSWORD as its password, allows password (scram-sha-256) connections from any
# address, and creates POSTGRES_DB; then it runs the server as the postgres user.
set -Eeuo pipefail

if [ "${1:0:1}" = "-" ]; then
  set -- postgres "$@"
fi

if [ "$1" = "postgres" ] && [ "$(id -u)" = "0" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chmod 2777 /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "Database is uninitialized and POSTGRES_PASSWORD is not set." >&2
    exit 1
  fi
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  echo "initdb: superuser $user, database $db, in $PGDATA"
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as in the official image
  initdb -D "$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 \
    ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  if [ "$db" != "postgres" ]; then
    # A private socket and no TCP: pg_isready (the health check) stays false until the end.
    sock="$(mktemp -d)"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$sock" start
    psql -v ON_ERROR_STOP=1 -h "$sock" -U "$user" -d postgres -v db="$db" \
      <<< 'CREATE DATABASE :"db";'
    pg_ctl -D "$PGDATA" -m fast -w stop
    rmdir "$sock"
  fi
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
