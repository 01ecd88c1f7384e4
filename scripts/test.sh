#!/usr/bin/env bash
# Run the whole test suite: installs what a fresh machine lacks (PostgreSQL, Redis and Chromium
# from Debian's packages when root; otherwise says exactly what to install), makes .venv, lints,
# then runs pytest, which starts its own PostgreSQL and Redis servers. Extra args go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# report.pdf: DejaVu Sans (±, −, →, ≥, χ²) and poppler's pdftotext/pdftoppm (tests/analysis/test_pdf.py).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
# A real PACS for the DICOM networking tests (tests/support/orthanc.py): Orthanc and its
# DICOMweb plugin.
command -v Orthanc >/dev/null 2>&1 || missing+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so >/dev/null 2>&1 || missing+=(orthanc-dicomweb)
# The deployment test (tests/deploy/): Docker, compose and debootstrap (local base images where
# no registry can be reached). Not needed when it is skipped (SKIP_DEPLOY_TEST=1, never in CI).
deploy_test=1
if [ "${SKIP_DEPLOY_TEST:-}" = "1" ] && [ "${CI:-}" != "true" ]; then deploy_test=0; fi
if [ "$deploy_test" = 1 ]; then
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 ||
    missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
fi
# Debian ships ensurepip (which "python -m venv" needs) in python3.11-venv / python3-venv.
if [ ! -x .venv/bin/python ] && python="$(find_python 2>/dev/null)" &&
   ! "$python" -c 'import ensurepip; ensurepip.version()' >/dev/null 2>&1; then
  missing+=("${python}-venv")  # python3.11 -> python3.11-venv, python3 -> python3-venv
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "Running as root needs the unprivileged 'postgres' user (created by the postgresql package)." >&2
  exit 1
fi

# The deployment test needs a running Docker daemon: start it (as root) when it does not answer.
if [ "$deploy_test" = 1 ] && command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "==> starting the Docker daemon"
    if [ -d /run/systemd/system ]; then
      systemctl start docker
    else
      setsid dockerd >/tmp/cxr-dockerd.log 2>&1 < /dev/null &
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start (/tmp/cxr-dockerd.log)" >&2; exit 1; }
  else
    echo "The Docker daemon does not answer: start it (sudo systemctl start docker), or set" >&2
    echo "SKIP_DEPLOY_TEST=1 to skip the deployment test outside CI." >&2
    exit 1
  fi
fi

ensure_venv "[test,model-metrics,docs]"
echo "==> ruff"
.venv/bin/ruff check .
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
