#!/usr/bin/env bash
# Build local stand-ins for the stack's base images from Debian's packages, for a machine that
# cannot reach a Docker registry (docker pull fails) but can reach a Debian mirror:
#
#   cxr-offline/debian:bookworm       debootstrap --variant=minbase bookworm, imported
#   cxr-offline/python:3.11-bookworm  Python 3.11 + venv      (for python:3.11-slim-bookworm)
#   cxr-offline/postgres:15-bookworm  PostgreSQL 15           (for postgres:15)
#   cxr-offline/redis:7-bookworm      Redis 7.0               (for redis:7)
#   cxr-offline/nginx:bookworm        nginx 1.22              (for nginx:1.27-alpine)
#
# The same docker/Dockerfile and docker/compose.yaml then use them through four variables
# (PYTHON_BASE, NGINX_BASE, POSTGRES_IMAGE, REDIS_IMAGE; defaults: the official images):
#
#   docker/build-offline.sh                 # 1.5 to 3 minutes the first time
#   eval "$(docker/build-offline.sh --env)"  # export the four variables (builds what is missing)
#   docker-compose -f docker/compose.yaml up -d --build
#
# Or put the printed lines (without "export") in docker/.env. Idempotent: an image that
# exists is kept unless --force. Needs root (debootstrap), docker, debootstrap.
#
# Options:
#   --force          rebuild every image, the Debian base included
#   --env            print only the export lines (progress goes to stderr)
#   --mirror URL     Debian mirror (default http://deb.debian.org/debian)
#   --pip-ca FILE    a CA bundle pip must trust to reach PyPI (a TLS-intercepting proxy):
#                    copied to docker/build-ca/, used only by the Dockerfile's build stage.
#                    Default: pip's own setting on this machine (PIP_CERT, or "cert" in
#                    /etc/pip.conf), if any.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE=bookworm
MIRROR="http://deb.debian.org/debian"
FORCE=0
ENV_ONLY=0
PIP_CA=""

DEBIAN_IMAGE="cxr-offline/debian:bookworm"
PYTHON_IMAGE="cxr-offline/python:3.11-bookworm"
POSTGRES_IMAGE="cxr-offline/postgres:15-bookworm"
REDIS_IMAGE="cxr-offline/redis:7-bookworm"
NGINX_IMAGE="cxr-offline/nginx:bookworm"

while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --env) ENV_ONLY=1 ;;
    --mirror) MIRROR="$2"; shift ;;
    --pip-ca) PIP_CA="$2"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# With --env, stdout carries only the export lines.
if [ "$ENV_ONLY" = 1 ]; then exec 3>&1 1>&2; fi

say() { printf '==> %s\n' "$*"; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }
want() { [ "$FORCE" = 1 ] || ! exists "$1"; }
START=$SECONDS

command -v docker >/dev/null || { echo "docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "the Docker daemon does not answer (start dockerd)" >&2; exit 1; }

# pip's CA for the Dockerfile's build stage (docker/build-ca/*.crt; never in the final image).
if [ -z "$PIP_CA" ]; then
  PIP_CA="${PIP_CERT:-}"
  if [ -z "$PIP_CA" ] && [ -f /etc/pip.conf ]; then
    PIP_CA="$(sed -n 's/^[[:space:]]*cert[[:space:]]*=[[:space:]]*//p' /etc/pip.conf | head -n 1)"
  fi
fi
if [ -n "$PIP_CA" ]; then
  if [ ! -f "$PIP_CA" ]; then
    echo "pip CA bundle not found: $PIP_CA" >&2; exit 1
  fi
  if ! cmp -s "$PIP_CA" "$HERE/build-ca/pip-ca.crt"; then
    say "pip CA: copying $PIP_CA to docker/build-ca/pip-ca.crt (trusted by pip in the build stage only)"
    cp "$PIP_CA" "$HERE/build-ca/pip-ca.crt"
  else
    say "pip CA: docker/build-ca/pip-ca.crt is up to date"
  fi
fi

# 1. The Debian base: debootstrap (minbase), then docker import.
if want "$DEBIAN_IMAGE"; then
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  t=$SECONDS
  root="$(mktemp -d /tmp/cxr-offline-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  say "$DEBIAN_IMAGE: debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" > "$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; echo "debootstrap failed (log: $root.log)" >&2; exit 1; }
  rm -f "$root.log"
  # As Debian's official images: updates and security updates, no recommends, no apt caches,
  # no services started by package scripts.
  security="${MIRROR%/debian}/debian-security"
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > "$root/etc/apt/apt.conf.d/90no-recommends"
  printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };\n' \
    > "$root/etc/apt/apt.conf.d/docker-clean"
  printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* \
         "$root"/var/log/*.log
  : > "$root/etc/hostname"
  say "$DEBIAN_IMAGE: docker import"
  tar --numeric-owner -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $SUITE $MIRROR (docker/build-offline.sh)" \
    - "$DEBIAN_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
  say "$DEBIAN_IMAGE: built in $((SECONDS - t)) s"
else
  say "$DEBIAN_IMAGE: exists, kept (--force to rebuild)"
fi

# 2. The four bases, FROM the Debian base, built side by side (mostly package downloads).
logs="$(mktemp -d /tmp/cxr-offline-logs.XXXXXX)"
pids=()
names=()
for spec in "python:$PYTHON_IMAGE" "postgres:$POSTGRES_IMAGE" "redis:$REDIS_IMAGE" \
            "nginx:$NGINX_IMAGE"; do
  kind="${spec%%:*}"
  image="${spec#*:}"
  if [ "$FORCE" != 1 ] && exists "$image"; then
    say "$image: exists, kept (--force to rebuild)"
    continue
  fi
  say "$image: docker build -f docker/offline/$kind.Dockerfile"
  (
    t=$SECONDS
    # The legacy builder (no BuildKit needed); --pull would try the registry.
    DOCKER_BUILDKIT=0 docker build --build-arg "DEBIAN_BASE=$DEBIAN_IMAGE" \
      --label "org.opencontainers.image.description=$kind base built by docker/build-offline.sh" \
      -t "$image" -f "$HERE/offline/$kind.Dockerfile" "$HERE/offline" > "$logs/$kind.log" 2>&1
    echo "$((SECONDS - t))" > "$logs/$kind.time"
  ) &
  pids+=($!)
  names+=("$kind:$image")
done
failed=0
for i in "${!pids[@]}"; do
  kind="${names[$i]%%:*}"
  image="${names[$i]#*:}"
  if wait "${pids[$i]}"; then
    say "$image: built in $(cat "$logs/$kind.time") s"
  else
    failed=1
    echo "!!! $image failed:" >&2
    tail -n 40 "$logs/$kind.log" >&2
  fi
done
rm -rf "$logs"
[ "$failed" = 0 ] || exit 1

say "offline bases ready in $((SECONDS - START)) s; use them with:"
lines="export PYTHON_BASE=$PYTHON_IMAGE
export NGINX_BASE=$NGINX_IMAGE
export POSTGRES_IMAGE=$POSTGRES_IMAGE
export REDIS_IMAGE=$REDIS_IMAGE"
if [ "$ENV_ONLY" = 1 ]; then
  echo "$lines" >&3
else
  echo "$lines"
fi
