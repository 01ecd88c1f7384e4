"""``{{ numbers|at:"drafts.failed" }}``: a dashboard number by its key (keys have dots)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def at(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key, "")
