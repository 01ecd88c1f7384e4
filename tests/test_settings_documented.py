"""One list of environment variables (``config.env``): the code reads every variable through
it, every variable in it is read, documented and passed to the compose stack's containers
(a setting nobody can find, or that never reaches the container, is a setting nobody sets)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config import env

ROOT = Path(__file__).resolve().parents[1]
# The product's code (not its tests or benchmarks, which set up their own environments).
PRODUCT = [p for p in ROOT.rglob("*.py") if p.relative_to(ROOT).parts[0] not in {
    "tests", "benchmarks", ".venv", "docs", "site", "data"} and "migrations" not in p.parts]
RAW_READ = re.compile(r"(?:os\.environ\.get|os\.environ\[|os\.getenv)\(?\s*[\"']([A-Z0-9_]+)[\"']")
THROUGH_LIST = re.compile(r"env\.(?:text|integer|number|flag|items|path)\(\s*[\"']([A-Z0-9_]+)")
# Read raw on purpose: not settings of the platform.
NOT_SETTINGS = {
    "PYTEST_VERSION": "set by pytest itself",
    "PORT": "the demo's port (scripts/demo.sh), for the demo's printed links",
}
# In the list but not passed by docker/compose.yaml, and why.
NOT_IN_COMPOSE = {
    "DEMO_MODE": "never in production", "DEBUG": "never in production",
    "DATA_DIR": "the image's paths are fixed", "STATIC_ROOT": "collected into the image",
    "GUNICORN_BIND": "nginx expects port 8000",
}


def _reads(pattern: re.Pattern) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PRODUCT:
        for name in pattern.findall(path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_code_reads_every_variable_through_the_list() -> None:
    raw = {name: paths for name, paths in _reads(RAW_READ).items() if name not in NOT_SETTINGS}
    assert not raw, f"read without config.env (add them to its list): {raw}"
    through = _reads(THROUGH_LIST)
    assert {"SECRET_KEY", "WEB_CONCURRENCY", "METRICS_BERTSCORE_LAYER"} <= set(through)
    unknown = sorted(set(through) - set(env.BY_NAME))
    assert not unknown, f"not in config/env.py: {unknown}"


def test_every_variable_in_the_list_is_read_and_documented() -> None:
    read = set(_reads(THROUGH_LIST))
    # Read by a name held in data: the model metrics' folders (metrics/model_metrics.py SPECS).
    from metrics.model_metrics import SPECS
    read |= {spec.setting for spec in SPECS.values()}
    unread = sorted(set(env.BY_NAME) - read)
    assert not unread, f"in config/env.py but read nowhere: {unread}"
    readme = (ROOT / "README.md").read_text()
    missing = sorted(name for name in env.BY_NAME if f"`{name}`" not in readme)
    assert not missing, f"not in the README: {missing}"
    assert len(env.VARIABLES) == len(env.BY_NAME), "a name twice in the list"
    for variable in env.VARIABLES:
        assert variable.meaning.strip() and variable.documented_default, variable.name
        assert variable.kind in {"flag", "text", "integer", "number", "list", "path"}
        if variable.default is None:  # worked out by the code: the list says how
            assert variable.shown, variable.name


def test_the_compose_stack_passes_every_variable() -> None:
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    start = compose.index("  environment:\n")
    block = compose[start:compose.index("  volumes:", start)]
    passed = set(re.findall(r"^    ([A-Z0-9_]+):", block, re.M))
    missing = sorted(set(env.BY_NAME) - passed - set(NOT_IN_COMPOSE))
    assert not missing, f"docker/compose.yaml does not pass: {missing}"


def test_a_variable_not_in_the_list_or_a_misused_fallback_is_an_error() -> None:
    with pytest.raises(KeyError):
        env.text("NOT_A_SETTING_OF_OURS")
    with pytest.raises(TypeError):
        env.text("SITE_URL", fallback="http://example.org")  # its default is a literal
    with pytest.raises(TypeError):
        env.path("DATA_DIR")  # its default is worked out by the settings: give it


@pytest.mark.parametrize(("value", "expected"), [
    (None, 25), ("", 25), ("  ", 25), ("587", 587)])
def test_unset_or_empty_takes_the_default(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("EMAIL_PORT", raising=False)
    else:
        monkeypatch.setenv("EMAIL_PORT", value)
    assert env.integer("EMAIL_PORT") == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("YES", True), ("on", True), ("0", False), ("no", False),
    ("", True), (None, True)])  # SECURE_COOKIES: on by default
def test_flags(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("SECURE_COOKIES", raising=False)
    else:
        monkeypatch.setenv("SECURE_COOKIES", value)
    assert env.flag("SECURE_COOKIES") is expected


def test_production_settings_take_the_documented_defaults() -> None:
    """The settings module loaded as production loads it (no pytest, no demo): each literal
    default of the list is the value Django gets."""
    code = ("import json, django.conf as c; from django.conf import settings as s; "
            "print(json.dumps([s.EMAIL_PORT, s.SESSION_IDLE_MINUTES, s.DICOM_LISTENER_AE_TITLE, "
            "s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.ALLOWED_HOSTS, s.SITE_URL, "
            "s.AXES_FAILURE_LIMIT]))")
    environ = {k: v for k, v in os.environ.items() if k not in {
        "PYTEST_VERSION", "DEMO_MODE", "DEBUG", *env.BY_NAME}}
    environ.update(SECRET_KEY="x" * 50, DJANGO_SETTINGS_MODULE="config.settings",
                   EMAIL_HOST="", SITE_URL="  ")  # empty: the defaults
    out = subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [25, 30.0, "CXRTRIALS", True, 31536000,
                               ["localhost", "127.0.0.1", "[::1]"], "http://127.0.0.1:8000", 5]
