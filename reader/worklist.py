"""A reader's worklist: their assigned cases in their stored random order, with progress."""

from __future__ import annotations

from dataclasses import dataclass

from trial.drafting.pipeline import active_endpoint
from trial.models import Arm, Assignment, Draft, Membership

from .models import Reading


@dataclass(frozen=True)
class Item:
    assignment: Assignment
    state: str  # "submitted", "open", "new", "waiting"
    why_waiting: str = ""

    @property
    def available(self) -> bool:
        return self.state in ("open", "new")


def worklist(reader: Membership) -> list[Item]:
    """Every assigned case in worklist order; an AI-arm case waits until its draft is ready
    (unless the trial offers it anyway, as a protocol deviation)."""
    assignments = (Assignment.objects.filter(reader=reader)
                   .select_related("case__trial").order_by("position"))
    readings = {r.assignment_id: r for r in
                Reading.objects.filter(assignment__reader=reader).only("assignment", "status")}
    held_back = [a.case_id for a in assignments if a.pk not in readings
                 and a.arm == Arm.AI_ASSISTED and not a.case.trial.offer_without_draft]
    drafts = _draft_states(reader, held_back)
    items = []
    for assignment in assignments:
        reading = readings.get(assignment.pk)
        if reading is not None:
            state = "submitted" if reading.status == Reading.Status.SUBMITTED else "open"
            items.append(Item(assignment, state))
            continue
        why = ""
        if assignment.case_id in drafts and drafts[assignment.case_id] != Draft.Status.DONE:
            state = drafts[assignment.case_id]
            why = "The AI draft is " + (
                "not made yet" if state is None else Draft.Status(state).label.lower()) + "."
        items.append(Item(assignment, "waiting" if why else "new", why))
    return items


def _draft_states(reader: Membership, case_ids: list[int]) -> dict[int, str | None]:
    """Status of the current draft of each case (None: no draft), in two queries whatever
    the worklist's length; the same rule as ``reading.draft_status``."""
    if not case_ids:
        return {}
    states: dict[int, str | None] = dict.fromkeys(case_ids)
    endpoint = active_endpoint(reader.trial)
    if endpoint is not None:
        states.update(Draft.objects.filter(case_id__in=case_ids, fingerprint=endpoint.fingerprint)
                      .values_list("case_id", "status"))
    return states


def progress(items: list[Item]) -> tuple[int, int]:
    """(submitted, total)."""
    return sum(i.state == "submitted" for i in items), len(items)


def next_item(items: list[Item]) -> Item | None:
    """The case to read next: an open reading first, else the first new one in order."""
    return (next((i for i in items if i.state == "open"), None)
            or next((i for i in items if i.state == "new"), None))


