"""Signing: the person re-enters their password at the moment of signing (two components,
user id and password, 21 CFR 11.200(a)); a wrong password signs nothing and is recorded."""

from __future__ import annotations

from typing import Any

from django.db import models

from . import audit
from .errors import Invalid
from .models import Signature, Trial


class SignatureRefused(Invalid):
    """The password given to sign is wrong (400): nothing was signed."""


def printed_name(user: Any) -> str:
    return (user.get_full_name() or "").strip() or user.get_username()


def verify(user: Any, password: str | None, *, meaning: str, obj: models.Model,
           trial: Trial) -> None:
    """Refuse (400) unless ``password`` is ``user``'s; a refusal is an audit event (call this
    before the transaction of the signed change, so the refusal stays on the record)."""
    if getattr(user, "is_authenticated", False) and password and user.check_password(password):
        return
    audit.record(action="signature.refused", obj=obj, trial=trial,
                 actor=user if getattr(user, "is_authenticated", False) else None,
                 after={"meaning": meaning})
    raise SignatureRefused("Signing needs your password, entered now: the password is wrong "
                           "or missing, so nothing was signed.")


def sign(user: Any, password: str | None, *, meaning: str, obj: models.Model,
         trial: Trial, simulated: bool = False) -> Signature:
    """Check ``password`` for ``user`` now and record the signature of ``obj`` with its
    meaning; call inside the transaction that makes the signed change.

    ``simulated`` is for the demo's simulation only (no person, no password): the signature
    says so wherever it is shown. No request reaches it (views always pass the password).
    """
    if not simulated:
        verify(user, password, meaning=meaning, obj=obj, trial=trial)
    signature = Signature.objects.create(
        trial=trial, signer=user, printed_name=printed_name(user), meaning=meaning,
        object_type=getattr(obj, "audit_type", obj._meta.label), object_id=str(obj.pk),
        simulated=simulated)
    audit.record(action="signature.made", obj=obj, actor=user, trial=trial,
                 after={"meaning": meaning, "printed_name": signature.printed_name,
                        "signature": signature.pk, "simulated": simulated})
    return signature


def signatures_of(obj: models.Model) -> list[Signature]:
    """The signatures of ``obj``, newest first (to show with the signed record)."""
    return list(Signature.objects.filter(
        object_type=getattr(obj, "audit_type", obj._meta.label), object_id=str(obj.pk)))


def signature_payload(obj: models.Model) -> dict | None:
    """The newest signature of ``obj`` as shown with the record (API and pages), or None."""
    found = signatures_of(obj)
    if not found:
        return None
    newest = found[0]
    return {"printed_name": newest.printed_name, "signed_at": newest.signed_at,
            "meaning": newest.get_meaning_display(), "simulated": newest.simulated,
            "text": str(newest)}
