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
    """Append one audit event for ``obj``; ``actor`` is the user (None for the system).

    The object's type is its model label, or its ``audit_type`` when the model moved between
    apps: a record keeps one type for its whole history.
    """
    if trial is None:
        trial = obj if isinstance(obj, Trial) else getattr(obj, "trial", None)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        trial=trial,
        actor=actor,
        action=action,
        object_type=getattr(obj, "audit_type", obj._meta.label),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
    )
