#!/bin/sh
# Entry point of the offline Redis image (docker/build-offline.sh), as the official image's:
# "redis-server [config file] [--option value ...]" runs as the redis user, in /data, with
# protected mode off (the official image builds Redis with it off: other containers connect).
set -eu

case "${1:-}" in
  -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = "redis-server" ]; then
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf="$1"; shift
    set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
  if [ "$(id -u)" = "0" ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi

exec "$@"
