#!/bin/sh
# Entry point of the app image (web, worker and migrate services): check the data directory,
# optionally migrate, then run the given command (gunicorn by default).
#   MIGRATE_ON_START=1  run "manage.py migrate" first (for a single container without the
#                       compose file's one-shot "migrate" service)
set -eu

media="${MEDIA_ROOT:-/data/media}"
mkdir -p "$media" 2>/dev/null || true
if ! [ -w "$media" ]; then
  echo "MEDIA_ROOT $media is not writable by uid $(id -u); give the volume to uid 10001:" >&2
  echo "  chown -R 10001:10001 <the directory mounted at $media>" >&2
  exit 1
fi

if [ "${MIGRATE_ON_START:-0}" = "1" ]; then
  python /app/manage.py migrate --no-input
fi

exec "$@"
