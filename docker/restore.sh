#!/bin/sh
# Restore a backup made by docker/backup.sh into a stack whose database is empty (a new host,
# or after "down -v"), then start the stack (its migrate service applies any newer migrations).
#   docker/restore.sh DIR [--force]
# --force: replace a database that already holds tables (drops them first).
# COMPOSE: as in backup.sh.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${COMPOSE:-}" ]; then
  if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose -f $here/compose.yaml"
  else COMPOSE="docker-compose -f $here/compose.yaml"; fi
fi
dir="${1:?usage: docker/restore.sh DIR [--force]}"
force="${2:-}"
(cd "$dir" && sha256sum --check --quiet SHA256SUMS) || {
  echo "$dir: the files do not match SHA256SUMS: not restoring" >&2; exit 1; }

# shellcheck disable=SC2086
$COMPOSE up -d db redis
tries=0
# shellcheck disable=SC2086
# Over TCP: a new database's first start runs a socket-only server while it initialises.
until $COMPOSE exec -T db sh -c 'pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"'; do
  tries=$((tries + 1)); [ "$tries" -lt 60 ] || { echo "the database did not start" >&2; exit 1; }
  sleep 2
done

# shellcheck disable=SC2086
tables="$($COMPOSE exec -T db sh -c 'psql -tAq -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c \
  "select count(*) from pg_tables where schemaname = '"'"'public'"'"'"')"
if [ "$tables" != "0" ]; then
  if [ "$force" != "--force" ]; then
    echo "the database already holds $tables tables: restore into an empty stack, or give --force" >&2
    exit 1
  fi
fi
echo "==> stopping the application (database and Redis stay up)"
# shellcheck disable=SC2086
$COMPOSE stop proxy web worker beat dicom >/dev/null 2>&1 || true
if [ "$tables" != "0" ]; then
  echo "==> --force: dropping the $tables tables"
  # shellcheck disable=SC2086
  $COMPOSE exec -T db sh -c 'psql -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
    -c "drop schema public cascade; create schema public;"'
fi
echo "==> database <- $dir/db.dump"
# shellcheck disable=SC2086
$COMPOSE exec -T db sh -c 'pg_restore --exit-on-error --no-owner -U "$POSTGRES_USER" -d "$POSTGRES_DB"' \
  < "$dir/db.dump"
echo "==> media <- $dir/media.tar"
# shellcheck disable=SC2086
$COMPOSE run --rm --no-deps -T web tar -C /data -xf - < "$dir/media.tar"
echo "==> starting the stack"
# shellcheck disable=SC2086
$COMPOSE up -d
echo "restore complete from $dir"
