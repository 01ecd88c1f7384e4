"""Every environment variable the settings read is in the README's tables (a setting nobody
can find is a setting nobody sets)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READERS = (r"(?:os\.environ\.get|os\.environ\[|os\.getenv|env_bool|env_list)\(?\s*"
           r"[\"']([A-Z0-9_]+)[\"']")
NOT_SETTINGS = {"PYTEST_VERSION"}  # set by pytest itself


def read_names(path: Path) -> set[str]:
    return set(re.findall(READERS, path.read_text())) - NOT_SETTINGS


def test_every_variable_of_the_settings_and_of_gunicorn_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    names = read_names(ROOT / "config" / "settings.py") | read_names(
        ROOT / "config" / "gunicorn.py")
    assert {"SECRET_KEY", "X_ACCEL_MEDIA_PREFIX", "WEB_CONCURRENCY"} <= names  # the scan works
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert not missing, f"not in the README: {missing}"
