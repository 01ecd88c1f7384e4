#!/bin/sh
# Back up a running stack: the database (pg_dump, custom format) and the media volume (the
# de-identified DICOM files and the viewer's files), into one folder with their checksums.
#   docker/backup.sh [DIR]        default: backups/<UTC date and time>
# The database first, then the files: files are content-addressed and never changed, so every
# file a row of the dump names is in the archive (a file newer than the dump is harmless).
# Not backed up: the DICOM listener's spool (identified instances not yet imported: the PACS
# sends them again) and Redis (queued tasks: the beat's sweep queues lost drafts again).
# COMPOSE: the compose command and its options, default
#   "docker compose -f docker/compose.yaml" (or docker-compose where the plugin is missing).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${COMPOSE:-}" ]; then
  if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose -f $here/compose.yaml"
  else COMPOSE="docker-compose -f $here/compose.yaml"; fi
fi
dir="${1:-backups/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$dir"
if [ -e "$dir/db.dump" ] || [ -e "$dir/media.tar" ]; then
  echo "$dir already holds a backup: give another folder" >&2
  exit 1
fi
echo "==> database -> $dir/db.dump"
# shellcheck disable=SC2086  # COMPOSE is a command with its options
$COMPOSE exec -T db sh -c 'pg_dump --format=custom --no-owner -U "$POSTGRES_USER" "$POSTGRES_DB"' \
  > "$dir/db.dump.part"
mv "$dir/db.dump.part" "$dir/db.dump"
echo "==> media -> $dir/media.tar"
# shellcheck disable=SC2086
$COMPOSE exec -T web tar -C /data -cf - media > "$dir/media.tar.part"
mv "$dir/media.tar.part" "$dir/media.tar"
(cd "$dir" && sha256sum db.dump media.tar > SHA256SUMS)
echo "backup complete: $dir ($(du -sh "$dir" | cut -f1)); keep it off this host"
