"""The apps' layering holds by itself: imports flow one way, and logic lives in services.

``trial`` <- ``accounts`` <- ``drafting`` <- ``reader`` <- ``rating`` <- ``notify`` <-
``pacs`` <- ``metrics`` <- ``analysis`` <- ``monitor`` <- ``demo`` <- ``ops``: a module of
an app may import its own app and the apps below it, never one above (a lower app that must
react to a higher one is extended by it, from the higher app's ``AppConfig.ready()``). Read from the
source with ``ast``, so an import inside a function counts too.

Admin and API modules are the two front doors: nothing else imports them to reach logic, and
neither imports the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("trial", "accounts", "drafting", "reader", "rating", "notify", "pacs", "metrics",
          "analysis", "monitor", "demo", "ops")
FRONTS = ("admin", "api")


def modules() -> list[tuple[str, Path]]:
    found = []
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


def imported(module: str, path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)
    return names


def front(module: str) -> str | None:
    """``admin`` or ``api`` if the module belongs to an app's admin or API, else None."""
    parts = module.split(".")
    return next((part for part in parts[1:] if part in FRONTS), None)


ALL = modules()


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_no_app_imports_an_app_above_it(module: str, path: Path) -> None:
    level = LAYERS.index(module.split(".")[0])
    above = {app for app in LAYERS[level + 1:]}
    wrong = sorted(name for name in imported(module, path) if name.split(".")[0] in above)
    assert not wrong, f"{module} (layer {LAYERS[level]}) imports {wrong}"


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_admin_and_api_modules_are_only_front_doors(module: str, path: Path) -> None:
    own = front(module)
    if module.endswith(".urls") or module.split(".")[-1] == "apps" or (
            path.name == "__init__.py" and module.split(".")[-1] == "admin"):
        return  # URL confs mount views; AppConfig and admin packages register them
    for name in imported(module, path):
        if name.split(".")[0] not in LAYERS:
            continue
        theirs = front(name)
        if theirs is None:
            continue
        assert own is not None, f"{module}, a service, imports {name} (an {theirs} module)"
        assert own == theirs, f"{module} ({own}) imports {name} ({theirs})"


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """A positive control: the parser finds imports at any depth, relative ones resolved."""
    path = tmp_path / "sample.py"
    path.write_text("def f():\n    from ..rating.models import Campaign\n    import demo.build\n")
    names = imported("reader.sample", path)
    assert {"rating.models", "demo.build"} <= names


@pytest.mark.parametrize(("module", "path"), ALL, ids=[m for m, _ in ALL])
def test_celery_is_known_only_to_each_apps_tasks_module(module: str, path: Path) -> None:
    """The rest of an app returns rows and never touches the queue (nor its eager mode)."""
    if module.endswith(".tasks"):
        return
    uses = sorted(n for n in imported(module, path) if n.split(".")[0] == "celery")
    assert not uses, f"{module} imports {uses}: only <app>.tasks may"
