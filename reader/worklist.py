"""A reader's worklist: their assigned cases in their stored random order, with progress."""

from __future__ import annotations

from dataclasses import dataclass

from drafting.queries import current_drafts
from trial.models import Arm, Assignment, Case, Membership

from .models import Reading
from .reading import not_ready_reason


@dataclass(frozen=True)
class WorklistEntry:
    assignment: Assignment
    state: str  # "submitted", "open", "new", "waiting", "withdrawn"
    why_waiting: str = ""

    @property
    def available(self) -> bool:
        return self.state in ("open", "new")


def worklist(reader: Membership) -> list[WorklistEntry]:
    """Every assigned case in worklist order; an AI-arm case waits until its draft is ready
    (unless the trial offers it anyway, as a protocol deviation)."""
    assignments = (Assignment.objects.filter(reader=reader)
                   .select_related("case__trial").order_by("position"))
    readings = {r.assignment_id: r for r in
                Reading.objects.filter(assignment__reader=reader).only("assignment", "status")}
    held_back = {a.case_id for a in assignments if a.pk not in readings
                 and a.arm == Arm.AI_ASSISTED and not a.case.trial.offer_without_draft}
    drafts = current_drafts(reader.trial, held_back)
    items = []
    for assignment in assignments:
        reading = readings.get(assignment.pk)
        if reading is not None and reading.status == Reading.Status.SUBMITTED:
            items.append(WorklistEntry(assignment, "submitted"))
            continue
        if assignment.case.status == Case.Status.WITHDRAWN:  # offered to nobody any more
            items.append(WorklistEntry(assignment, "withdrawn"))
            continue
        if reading is not None:
            items.append(WorklistEntry(assignment, "open"))
            continue
        why = (not_ready_reason(drafts.get(assignment.case_id))
               if assignment.case_id in held_back else None) or ""
        items.append(WorklistEntry(assignment, "waiting" if why else "new", why))
    return items


def progress(items: list[WorklistEntry]) -> tuple[int, int]:
    """(submitted, total); a withdrawn case left unread is not counted."""
    return (sum(i.state == "submitted" for i in items),
            sum(i.state != "withdrawn" for i in items))


def next_item(items: list[WorklistEntry]) -> WorklistEntry | None:
    """The case to read next: an open reading first, else the first new one in order."""
    return (next((i for i in items if i.state == "open"), None)
            or next((i for i in items if i.state == "new"), None))


