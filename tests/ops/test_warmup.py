"""A web process compiles its templates and imports its views before its first request."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from django.conf import settings
from django.template import engines
from django.template.loaders.cached import Loader as CachedLoader

from ops.warmup import warm_up


def _cached_names() -> set[str]:
    loaders = engines["django"].engine.template_loaders
    cached = [loader for loader in loaders if isinstance(loader, CachedLoader)]
    assert cached, "Django's cached template loader is not in use"
    return {template.origin.template_name for loader in cached
            for template in loader.get_template_cache.values()
            if hasattr(template, "origin")}


def test_warm_up_compiles_every_project_template_without_the_database() -> None:
    """No database mark: any query would fail the test (pytest-django refuses it)."""
    summary = warm_up()
    ours = {path.relative_to(settings.BASE_DIR / "templates").as_posix()
            for path in (settings.BASE_DIR / "templates").rglob("*.html")}
    assert ours and ours <= _cached_names()
    assert "admin/base_site.html" in _cached_names()  # apps' templates too
    assert summary["templates"] >= len(ours) and summary["templates_skipped"] == 0
    assert summary["urls"] > 100


def test_gunicorn_warms_each_worker_up_before_it_serves() -> None:
    spec = importlib.util.spec_from_file_location(
        "gunicorn_settings", Path(settings.BASE_DIR) / "config" / "gunicorn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engines["django"].engine.template_loaders[0].reset()
    assert "reader/case.html" not in _cached_names()
    module.post_worker_init(worker=None)
    assert "reader/case.html" in _cached_names()
