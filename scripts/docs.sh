#!/usr/bin/env bash
# The documentation site: the guides' pictures taken from a fresh demo in Chromium
# (docs/screenshots.py, into docs/img/), then `mkdocs build --strict` into site/ (a broken link,
# a missing page or picture fails it). Extra args go to mkdocs build (e.g. -d DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_env.sh
ensure_venv "[docs]"
echo "==> pictures (docs/screenshots.py)"
.venv/bin/python docs/screenshots.py
echo "==> mkdocs build --strict"
NO_MKDOCS_2_WARNING=1 exec .venv/bin/mkdocs build --strict "$@"
