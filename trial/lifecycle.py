"""The trial's life: a one-way state machine, and what each state allows.

set-up -> enrolling -> reading -> rating -> locked, never backwards, and *locked* is final:
the randomisation list, its seed and the unblinded keys are revealed only then, so a trial
that could be unlocked again would let its coordinator peek and carry on. Every change of
status goes through ``set_status`` (the admin, the API and ``manage.py trial_status``), and
every write to a trial's records asks ``check_writable`` first.

Once a trial leaves set-up (or has its randomisation list), what the allocation, the screening
and the analysis were built from is frozen: the arms' ratio, labels and block sizes,
stratification, and the eligibility criteria.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Q

from . import audit
from .errors import Conflict, Invalid
from .models import Trial
from .signatures import sign, verify

Status = Trial.Status
ORDER: tuple[str, ...] = (Status.SETUP, Status.ENROLLING, Status.READING, Status.RATING,
                          Status.LOCKED)
# What allocation, screening and the analysis depend on: fixed once the trial leaves set-up.
FROZEN_DESIGN = ("ai_assisted_label", "scp_label", "ratio_ai_assisted", "ratio_scp",
                 "block_sizes", "stratify_by_site")


class TrialLocked(Conflict):
    """The trial is locked: nothing of it changes any more (409)."""


class DesignFrozen(Conflict):
    """The design cannot change once the trial has left set-up (409)."""


def next_statuses(current: str) -> tuple[str, ...]:
    """The statuses ``current`` may move to: any later one (none after *locked*)."""
    return ORDER[ORDER.index(current) + 1:]


def check_transition(current: str, wanted: str) -> None:
    """Refuse a move that is not forward, or out of *locked*."""
    if wanted not in ORDER:
        raise Invalid(f"Unknown status {wanted!r}; expected one of {', '.join(ORDER)}.")
    if current == Status.LOCKED:
        raise TrialLocked("The trial is locked, and locked is final: its status never changes "
                          "again.")
    if wanted not in next_statuses(current):
        labels = dict(Status.choices)
        raise Conflict(
            f"A trial's status only moves forward (set-up, enrolling, reading, rating, locked): "
            f"it cannot go from {labels[current]} back to {labels[wanted]}.")


def set_status(trial: Trial, wanted: str, *, by: Any, password: str | None = None) -> Trial:
    """Move ``trial`` forward to ``wanted`` (audited); the same status again is a no-op.

    Locking is final and unblinds: it is an electronic signature, so it needs ``by``'s
    password, entered at that moment (``trial.signatures``).
    """
    if wanted == Status.LOCKED:  # a wrong password is refused, and recorded, before anything
        verify(by, password, meaning="trial_locked", obj=trial, trial=trial)
    with transaction.atomic():
        locked = Trial.objects.select_for_update().get(pk=trial.pk)
        if locked.status == wanted and wanted != Status.LOCKED:
            return locked
        check_transition(locked.status, wanted)
        before = locked.status
        locked.status = wanted
        locked.save(update_fields=["status"])
        audit.record(action="trial.status_changed", obj=locked, actor=by,
                     before={"status": before}, after={"status": wanted})
        if wanted == Status.LOCKED:
            sign(by, password, meaning="trial_locked", obj=locked, trial=locked)
            audit.record(action="trial.locked", obj=locked, actor=by,
                         after={"revealed": ["randomisation list", "seed", "unblinded keys"]})
    trial.status = wanted
    return locked


def is_locked(trial: Trial | int) -> bool:
    trial_id = trial if isinstance(trial, int) else trial.pk
    return Trial.objects.filter(pk=trial_id, status=Status.LOCKED).exists()


def check_writable(trial: Trial | int, what: str = "This") -> None:
    """Refuse (409) any change to a locked trial's records, read from the database (not a
    stale instance)."""
    if is_locked(trial):
        raise TrialLocked(f"{what} cannot change: the trial is locked.")


def design_frozen(trial: Trial) -> bool:
    """Has the trial left set-up, or does it have its randomisation list?"""
    return Trial.objects.filter(pk=trial.pk).filter(
        ~Q(status=Status.SETUP) | Q(randomization__isnull=False)).exists()


def check_design_change(trial: Trial, changes: Mapping[str, Any]) -> None:
    """Refuse (409) a change of a frozen design field (``FROZEN_DESIGN``), with the reason."""
    if trial.pk is None or not design_frozen(trial):
        return
    stored = Trial.objects.values(*FROZEN_DESIGN).get(pk=trial.pk)
    changed = [name for name in FROZEN_DESIGN if name in changes and changes[name] != stored[name]]
    if changed:
        raise DesignFrozen(
            f"{', '.join(changed)} cannot change: the trial has left set-up (or has its "
            "randomisation list), and allocation, screening and the analysis depend on them.")


def check_criteria_editable(trial: Trial | int) -> None:
    """Eligibility criteria are fixed once the trial has left set-up: cases were screened
    against them."""
    trial_id = trial if isinstance(trial, int) else trial.pk
    if Trial.objects.filter(pk=trial_id).exclude(status=Status.SETUP).exists():
        raise DesignFrozen("Eligibility criteria cannot change once the trial has left set-up: "
                           "cases are screened against them.")
