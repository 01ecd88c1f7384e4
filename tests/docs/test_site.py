"""The documentation site, built as CI builds it: the guides' pictures taken from a fresh demo
in Chromium (``docs/screenshots.py``), then ``mkdocs build --strict``, which fails on a broken
link, a missing page, an anchor that does not exist or a picture no shot made. The generated
pages are then checked against the code's own lists (settings, export columns, commands).

One test, a few minutes: the pictures show the product as it is on every run.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")


def _clean_env() -> dict[str, str]:
    """The environment of a person building the site: not the test session's database."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE", "REDIS", "DJANGO", "MEDIA", "STATIC", "PYTEST"))}
    return {**env, "NO_MKDOCS_2_WARNING": "1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium (/usr/bin/chromium) is needed for the guides' pictures")
        pytest.skip("Chromium (/usr/bin/chromium) is not installed")
    env = _clean_env()
    shots = subprocess.run([sys.executable, "docs/screenshots.py"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=1800)
    assert shots.returncode == 0, (shots.stdout + shots.stderr)[-6000:]
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-6000:]
    print(shots.stdout.strip().splitlines()[-1])
    return out


def _text(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", path.read_text()))


def test_every_shot_is_taken_and_every_picture_a_guide_shows_exists(site: Path) -> None:
    made = {shot["file"] for path in (ROOT / "docs" / "shots").glob("*.yaml")
            for shot in yaml.safe_load(path.read_text()) or []}
    for name in made:
        assert (site / "img" / name).stat().st_size > 1000, name
    shown = set()
    for page in (ROOT / "docs").rglob("*.md"):
        shown |= {m.split("img/", 1)[1] for m in re.findall(r"\]\(([^)]+\.png)\)",
                                                            page.read_text())}
    assert shown <= made, sorted(shown - made)


def test_every_setting_is_on_the_settings_page(site: Path) -> None:
    from config import env

    page = _text(site / "operations" / "settings" / "index.html")
    for variable in env.VARIABLES:
        assert variable.name in page, variable.name


def test_every_exported_column_is_on_the_exports_page(site: Path) -> None:
    from analysis.datasets import DATA_DICTIONARY

    page = _text(site / "reference" / "exports" / "index.html")
    for table, columns in DATA_DICTIONARY.items():
        assert table in page, table
        for column in columns:
            assert column in page, (table, column)


def test_every_command_is_on_the_install_page_and_the_api_reference_is_built(
    site: Path,
) -> None:
    from django.core.management import get_commands

    page = _text(site / "operations" / "install" / "index.html")
    ours = [name for name, app in get_commands().items()
            if (ROOT / app.replace(".", "/")).is_dir() and not app.startswith("django")]
    assert {"seed_demo", "import_dicom", "check_model", "export_analysis"} & set(ours)
    for name in ours:
        assert name in page, name
    api = _text(site / "reference" / "api" / "index.html")
    assert "/api/trials/{trial_slug}/worklist/" in api
