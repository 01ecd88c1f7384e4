"""Audit events for set-up edits made in the admin or the API (same words in both places).

Service functions (randomisation, enrolment, assignment) write their own audit events; this
covers plain edits of trials, sites, people, criteria and cases, which have no service function.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from trial import audit
from trial.models import AuditEvent

# Never copied into the audit log: secrets and re-identifying keys.
HIDDEN_FIELDS = frozenset({"deid_salt", "seed", "study_key", "password"})


def snapshot(obj: models.Model) -> dict[str, Any]:
    """The stored values of ``obj`` as JSON-safe data, without secrets or files."""
    data = {}
    for field in obj._meta.concrete_fields:
        if field.name in HIDDEN_FIELDS or isinstance(field, models.FileField):
            continue
        data[field.attname] = field.value_from_object(obj)
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def stored_snapshot(obj: models.Model) -> dict[str, Any] | None:
    """The snapshot of ``obj`` as the database holds it now (None for a new object)."""
    if obj.pk is None:
        return None
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return snapshot(stored) if stored is not None else None


def record_edit(
    obj: models.Model, *, actor: Any, before: dict[str, Any] | None, deleted: bool = False
) -> AuditEvent | None:
    """Append ``<model>.created|changed|deleted`` unless nothing changed.

    Call inside the transaction of the edit, after saving (before deleting, for deletions).
    """
    name = obj._meta.model_name
    if deleted:
        return audit.record(action=f"{name}.deleted", obj=obj, actor=actor, before=before)
    after = snapshot(obj)
    if before == after:
        return None
    verb = "created" if before is None else "changed"
    return audit.record(action=f"{name}.{verb}", obj=obj, actor=actor, before=before, after=after)
