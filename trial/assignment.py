"""Case assignment: each enrolled case to one reader of each arm, balanced; random worklist order.

Only allocated readers receive cases (a reader's arm is its allocation). Within an arm the
reader with the fewest assignments gets the next case, ties broken by the seeded RNG, so
workloads stay balanced across runs. The cases a run gives a reader are shuffled and appended
after the reader's current worklist. Cases and readers are taken in a stable order (case id,
username), so the same seed on the same data gives the same assignments and positions.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Count, Max

from . import audit, enrolment
from .errors import Conflict
from .models import Arm, Assignment, Case, Membership, Role, Trial


class AssignmentError(Conflict):
    """Cases cannot be assigned (409); the message says which case or arm lacks a reader."""


def _allocated_readers(trial: Trial) -> dict[str, list[Membership]]:
    readers = (
        Membership.objects.filter(trial=trial, role=Role.READER, allocation_slot__isnull=False)
        .select_related("allocation_slot", "user", "site")
        .annotate(load=Count("assignments"), last=Max("assignments__position"))
        .order_by("user__username", "pk")
    )
    by_arm: dict[str, list[Membership]] = {arm: [] for arm in Arm.values}
    for reader in readers:
        by_arm[reader.allocation_slot.arm].append(reader)
    return by_arm


def _waiting(trial: Trial) -> list[tuple[Case, list[str]]]:
    """Enrolled cases and the arms each still needs a reader of."""
    cases = Case.objects.filter(trial=trial, status=Case.Status.ENROLLED).select_related("site")
    have: dict[int, set[str]] = defaultdict(set)
    for case_id, arm in Assignment.objects.filter(case__in=cases).values_list("case_id", "arm"):
        have[case_id].add(arm)
    waiting = [(c, [a for a in Arm.values if a not in have[c.pk]]) for c in cases]
    return sorted([w for w in waiting if w[1]], key=lambda w: w[0].case_id)


def _check_readers(trial: Trial, waiting: list[tuple[Case, list[str]]],
                   readers: dict[str, list[Membership]]) -> None:
    problems = [
        f"no allocated reader in arm {trial.arm_label(arm)!r} ({arm}); allocate readers first"
        for arm in Arm.values if not readers[arm] and any(arm in arms for _, arms in waiting)
    ]
    if trial.same_site_assignment and not problems:
        for case, arms in waiting:
            for arm in arms:
                if not any(r.site_id == case.site_id for r in readers[arm]):
                    problems.append(f"case {case} (site {case.site.code}): no allocated "
                                    f"{trial.arm_label(arm)!r} reader at that site")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20
                                 else [])
        raise AssignmentError("cannot assign cases: " + "; ".join(shown))


def assign_cases(trial: Trial, *, by, seed: int | None = None) -> list[Assignment]:
    """Assign every enrolled case lacking a reader of an arm; returns the new Assignment rows.

    All or nothing, serialised per trial by a row lock on the trial. Running it again with
    nothing waiting returns an empty list. The seed (drawn when None) is in the audit events.
    """
    seed = secrets.randbits(63) if seed is None else seed
    rng = random.Random(seed)
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=trial.pk)
        if trial.status == Trial.Status.LOCKED:
            raise AssignmentError(f"trial {trial.slug!r} is locked; nothing can be assigned")
        waiting = _waiting(trial)
        if not waiting:
            return []
        return _assign(trial, waiting, by=by, seed=seed, rng=rng)


def _assign(trial: Trial, waiting: list[tuple[Case, list[str]]], *, by,
            seed: int, rng: random.Random) -> list[Assignment]:
    """Give each waiting case a reader of each arm it lacks (``assign_cases``'s rules), store
    and audit the rows. Called with the trial's row locked."""
    readers = _allocated_readers(trial)
    _check_readers(trial, waiting, readers)
    new: dict[int, list[tuple[Case, str]]] = defaultdict(list)
    load = {r.pk: r.load for arm_readers in readers.values() for r in arm_readers}
    for case, arms in waiting:
        for arm in arms:
            pool = [r for r in readers[arm]
                    if not trial.same_site_assignment or r.site_id == case.site_id]
            fewest = min(load[r.pk] for r in pool)
            chosen = rng.choice([r for r in pool if load[r.pk] == fewest])
            load[chosen.pk] += 1
            new[chosen.pk].append((case, arm))
    actor = by if getattr(by, "pk", None) else None
    rows: list[Assignment] = []
    for reader in (r for arm_readers in readers.values() for r in arm_readers):
        given = new.get(reader.pk, [])
        rng.shuffle(given)
        rows += [
            Assignment(case=case, reader=reader, arm=arm, position=(reader.last or 0) + i,
                       assigned_by=actor)
            for i, (case, arm) in enumerate(given, start=1)
        ]
    Assignment.objects.bulk_create(rows)
    for row in rows:
        _audit(trial, row, by, seed)
    return rows


def assign_case(case: Case, *, by, seed: int | None = None) -> list[Assignment]:
    """Assign one enrolled case to a reader of each arm it still lacks, by the rules of
    ``assign_cases`` (allocated readers only; within an arm the least loaded reader, ties
    broken by the seeded RNG; same-site readers when the trial says so), each appended at the
    end of the chosen reader's worklist. Returns the new rows ([] when nothing was missing).

    Serialised with ``assign_cases`` by the same row lock on the trial; audited the same way.
    """
    seed = secrets.randbits(63) if seed is None else seed
    rng = random.Random(seed)
    with transaction.atomic():
        trial = Trial.objects.select_for_update().get(pk=case.trial_id)
        if trial.status == Trial.Status.LOCKED:
            raise AssignmentError(f"trial {trial.slug!r} is locked; nothing can be assigned")
        fresh = Case.objects.select_related("site").get(pk=case.pk)
        if fresh.status != Case.Status.ENROLLED:
            raise AssignmentError(f"case {fresh} is {fresh.get_status_display().lower()}; only "
                                  "an enrolled case is assigned")
        have = set(Assignment.objects.filter(case=fresh).values_list("arm", flat=True))
        arms = [arm for arm in Arm.values if arm not in have]
        if not arms:
            return []
        return _assign(trial, [(fresh, arms)], by=by, seed=seed, rng=rng)


def enrol_and_assign(case: Case, *, by, seed: int | None = None,
                     ) -> tuple[Case, list[Assignment]]:
    """Enrol ``case`` (``enrolment.enrol``) and assign it (``assign_case``), both or neither:
    a case that cannot be assigned yet (an arm without an allocated reader, say) is not
    enrolled either, and the refusal says why. Returns the case and its new assignments."""
    with transaction.atomic():
        enrolled = enrolment.enrol(case, by=by)
        rows = assign_case(enrolled, by=by, seed=seed)
    return enrolled, rows


def _audit(trial: Trial, row: Assignment, by: Any, seed: int) -> None:
    audit.record(
        action="case.assigned", obj=row.case, actor=by, trial=trial, before=None,
        after={"assignment": row.pk, "reader": row.reader.user.get_username(),
               "arm": row.arm, "position": row.position, "seed": seed},
    )


def workload(trial: Trial) -> list[dict[str, Any]]:
    """Per allocated reader: arm and number of assigned cases (for the command and the admin)."""
    readers = _allocated_readers(trial)
    return [
        {"reader": r.user.get_username(), "site": r.site.code if r.site else "", "arm": arm,
         "arm_label": trial.arm_label(arm), "cases": r.load}
        for arm in Arm.values for r in readers[arm]
    ]
