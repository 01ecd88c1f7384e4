#!/usr/bin/env bash
# Run the demo on the embedded defaults: SQLite under ./data, tasks in-process, the demo model
# backend, a seeded demo trial with synthetic images. Serves http://127.0.0.1:8000/
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
ensure_venv ""
export DEMO_MODE=1
export DJANGO_SETTINGS_MODULE=config.settings
mkdir -p data
echo "==> migrating the SQLite database (data/db.sqlite3)"
.venv/bin/python manage.py migrate --no-input
echo "==> seeding the demo trial"
.venv/bin/python manage.py seed_demo --if-missing
echo "==> serving on http://127.0.0.1:${PORT:-8000}/ (Ctrl-C stops)"
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT:-8000}"
