"""Write audit events. Call inside the transaction that makes the change, so both or neither."""

from __future__ import annotations

from typing import Any

from django.db import models

from .models import AuditEvent, Trial


def record(
    *,
    action: str,
    obj: models.Model,
    actor: Any = None,
    trial: Trial | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one audit event for ``obj``; ``actor`` is the user (None for the system)."""
    if trial is None:
        trial = obj if isinstance(obj, Trial) else getattr(obj, "trial", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        trial=trial,
        actor=actor,
        action=action,
        object_type=obj._meta.label,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
    )
