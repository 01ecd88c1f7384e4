"""The README stays true and short: its links lead somewhere, it names every command of the
project (the full list is on the site's commands page), and it gives exactly two set-up
commands."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_relative_link_of_the_readme_exists() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, missing


def test_the_readme_names_every_project_command() -> None:
    from django.core.management import get_commands

    ours = sorted(name for name, app in get_commands().items()
                  if (ROOT / app.replace(".", "/")).is_dir() and not app.startswith("django"))
    assert "seed_demo" in ours and "check_model" in ours
    missing = [name for name in ours if f"`{name}`" not in README]
    assert not missing, missing


def test_the_quick_start_is_the_two_commands() -> None:
    start = README.index("## Quick start")
    block = README[start:README.index("```", README.index("```sh", start) + 5)]
    commands = [line.split("#")[0].strip() for line in block.splitlines()[1:]
                if line.startswith("./")]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert len(README.splitlines()) < 300
