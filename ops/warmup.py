"""Load, before a web worker takes its first request, what Django would otherwise load during
the first requests: every view module (through the URL configuration) and every template.

Measured with Django's test client in a fresh process on the demo database: the first page
took 1,229 ms and the same page next 20 ms; each page's own templates are compiled on its first
request too. With 8 gunicorn processes each first request of each kind paid that, and a page
asked for a few times a minute (a senior's review) met a cold process often. gunicorn calls
``warm_up`` after loading the application and before accepting requests (config/gunicorn.py).
Nothing here touches the database.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from django.template import TemplateSyntaxError, engines
from django.urls import URLPattern, URLResolver, get_resolver

logger = logging.getLogger(__name__)
TEMPLATE_SUFFIXES = {".html", ".txt", ".xml", ".json"}


def _patterns(resolver: URLResolver) -> int:
    count = 0
    for pattern in resolver.url_patterns:  # imports each included URLconf and its views
        if isinstance(pattern, URLResolver):
            count += _patterns(pattern)
        elif isinstance(pattern, URLPattern):
            count += 1
    return count


def _template_names(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")
                  if path.suffix in TEMPLATE_SUFFIXES and path.is_file())


def warm_up() -> dict[str, float]:
    """Import every view, fill the URL resolver's reverse lookup and compile every template
    into the engines' cached loaders; returns what was done (counts, seconds)."""
    started = time.perf_counter()
    resolver = get_resolver()
    urls = _patterns(resolver)
    resolver.reverse_dict  # noqa: B018 - builds the reverse lookup every reverse() uses
    compiled = skipped = 0
    for engine in engines.all():
        for folder in engine.template_dirs:
            for name in _template_names(Path(folder)):
                try:
                    engine.get_template(name)
                    compiled += 1
                except (TemplateSyntaxError, LookupError, ImportError, UnicodeDecodeError) as exc:
                    # A template of an app's optional part (a library not installed): the page
                    # that needs it would fail the same way; warming up must not.
                    skipped += 1
                    logger.debug("warm-up: template %s not compiled: %s", name, exc)
    summary = {"urls": urls, "templates": compiled, "templates_skipped": skipped,
               "seconds": round(time.perf_counter() - started, 3)}
    logger.info("warmed up: %(urls)d URLs, %(templates)d templates (%(templates_skipped)d "
                "skipped) in %(seconds).2f s", summary)
    return summary
