"""A reader's reading of one case: open, events, autosave, submit, amend.

Reading time follows ``PROTOCOL.md``: from the first display of the image to submission, on
the server's clock (the browser only says *that* something happened). A reload or a crashed
browser resumes the same reading: the text is as last saved, the clock keeps running, and the
time without any sign of the page is recorded as a gap. Active time counts only the stretches
when the page was visible and focused and kept reporting (heartbeats, saves).
At submission the reading is flagged when implausible (``reading_flags``) for the coordinator;
neither the times nor the flags are ever sent to the reader (``reader.payloads``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from drafting.models import Draft
from drafting.parsing import UnparseableReply, parse_report
from drafting.queries import current_draft
from trial import audit, signatures
from trial.errors import Invalid
from trial.lifecycle import is_locked
from trial.models import Arm, Assignment, Case, Membership, Signature, Trial

from .models import Amendment, Reading, ReadingEvent, Review
from .texts import edit_distance, report_text

# With no event for longer than this, the page is taken to be gone (closed, crashed, asleep).
# The page sends a heartbeat every 10 s while visible.
LIVENESS = timedelta(seconds=30)
CLIENT_EVENTS = {
    ReadingEvent.Kind.IMAGE_DISPLAYED, ReadingEvent.Kind.HEARTBEAT, ReadingEvent.Kind.VISIBLE,
    ReadingEvent.Kind.HIDDEN, ReadingEvent.Kind.FOCUS, ReadingEvent.Kind.BLUR,
}


class ReadingError(Invalid):
    """The reading cannot do that (400); the message says why."""


class NotReady(ReadingError):
    """AI arm: the case's draft is not ready, and the trial holds such cases back."""

    status = 409


class Locked(ReadingError):
    """The reading is submitted: only an amendment (with a reason) may change it."""

    status = 409


class Withdrawn(Locked):
    """The case was withdrawn from the trial: nobody reads, submits or reviews it any more."""


def withdrawn_message(case: Case) -> str:
    when = f" on {case.withdrawn_at:%Y-%m-%d}" if case.withdrawn_at else ""
    return (f"Case {case.case_id} was withdrawn from the trial{when}: it is no longer read, "
            "and nothing more is recorded for it.")


def check_not_withdrawn(case: Case) -> None:
    if case.status == Case.Status.WITHDRAWN:
        raise Withdrawn(withdrawn_message(case))


class StaleVersion(ReadingError):
    """The save was based on an older version than the stored one (another tab saved since)."""

    status = 409

    def __init__(self, current: int) -> None:
        super().__init__(f"This report was saved elsewhere since (version {current}); reload.")
        self.current = current

    def extra(self) -> dict:
        """The stored version, as a number: the page tells "saved elsewhere" from "locked"."""
        return {"version": self.current}


def draft_status(assignment: Assignment) -> tuple[Draft | None, str | None]:
    """(draft, why not offered) for an AI-arm assignment; SCP: (None, None), never a draft."""
    if assignment.arm != Arm.AI_ASSISTED:
        return None, None
    draft = current_draft(assignment.case)
    why = not_ready_reason(draft)
    return (None, why) if why else (draft, None)


def not_ready_reason(draft: Draft | None) -> str | None:
    """Why an AI-arm case whose current draft is ``draft`` cannot be offered (None: it can)."""
    if draft is not None and draft.status == Draft.Status.DONE:
        return None
    state = "not made yet" if draft is None else draft.get_status_display().lower()
    return f"The AI draft is {state}."


def _starting_text(assignment: Assignment) -> tuple[str, str, str, Draft | None, str]:
    """(findings, impression, started_from, draft, deviation) for a new reading."""
    trial = assignment.case.trial
    draft, why = draft_status(assignment)
    if draft is not None:
        return draft.findings, draft.impression, Reading.Start.DRAFT, draft, ""
    deviation = ""
    if why:
        if not trial.offer_without_draft:
            raise NotReady(why)
        deviation = f"Offered without its AI draft: {why}"
    try:
        findings, impression = parse_report(trial.report_template)
    except UnparseableReply:
        return "", "", Reading.Start.BLANK, None, deviation
    return findings, impression, Reading.Start.TEMPLATE, None, deviation


def _event(reading: Reading, kind: str, at: datetime, *, client_at: datetime | None = None,
           detail: dict | None = None) -> ReadingEvent:
    return ReadingEvent.objects.create(reading=reading, kind=kind, at=at, client_at=client_at,
                                       detail=detail or {})


Seat = tuple[Membership, int]  # a reader's membership and a worklist position


def _update_open(row: Reading | Seat, values: dict[str, Any], *, version: int | None = None,
                 unless: dict[str, str] | None = None) -> int | None:
    """Set ``values`` on the reading while it may change (open, its trial not locked, its case
    not withdrawn; and at ``version``, and unless it already holds ``unless``) in one
    ``UPDATE ... RETURNING``: the row lock and every check in one statement, the hot paths'
    (heartbeat, autosave) shortcut past ``_locked``. The reading's key, or None: nothing
    updated, the full path decides (and says why not). ``row``: the reading, or (reader,
    position) for the API, which then needs no query to find it. Written out because the
    ORM's compilation of the same statement (a join subquery) cost more CPU than the rest of a
    heartbeat's database work."""
    quote, fields = connection.ops.quote_name, Reading._meta
    column = {name: quote(fields.get_field(name).column) for name in
              ("id", "assignment", "status", "version", *values, *(unless or {}))}
    table, assignments = quote(fields.db_table), quote(Assignment._meta.db_table)
    sets = [f"{column[name]} = %s" for name in values]
    set_params: list[Any] = [fields.get_field(name).get_db_prep_save(value, connection)
                             for name, value in values.items()]
    if isinstance(row, Reading):
        where, params = [f"{column['id']} = %s"], [row.pk]
        trial_sql, trial_params = (
            f"(SELECT {quote('trial_id')} FROM {quote(Case._meta.db_table)} WHERE {quote('id')} "
            f"= (SELECT {quote('case_id')} FROM {assignments} WHERE {quote('id')} = "
            f"{table}.{column['assignment']}))"), []
    else:
        reader, position = row
        where = [f"{column['assignment']} = (SELECT {quote('id')} FROM {assignments} WHERE "
                 f"{quote('reader_id')} = %s AND {quote('position')} = %s)"]
        params = [reader.pk, position]
        trial_sql, trial_params = "%s", [reader.trial_id]  # a reader's cases are its trial's
    where.append(f"{column['status']} = %s")
    params.append(Reading.Status.OPEN)
    if version is not None:
        sets.append(f"{column['version']} = %s")
        set_params.append(version + 1)
        where.append(f"{column['version']} = %s")
        params.append(version)
    if unless:
        where.append("NOT (" + " AND ".join(f"{column[name]} = %s" for name in unless) + ")")
        params.extend(unless.values())
    where.append(f"NOT EXISTS (SELECT 1 FROM {quote(Trial._meta.db_table)} WHERE {quote('id')} "
                 f"= {trial_sql} AND {quote('status')} = %s)")
    params.extend([*trial_params, Trial.Status.LOCKED])
    # Nor once its case is withdrawn: nothing more is recorded for it (the full path says so).
    where.append(f"NOT EXISTS (SELECT 1 FROM {quote(Case._meta.db_table)} WHERE {quote('id')} "
                 f"= (SELECT {quote('case_id')} FROM {assignments} WHERE {quote('id')} = "
                 f"{table}.{column['assignment']}) AND {quote('status')} = %s)")
    params.append(Case.Status.WITHDRAWN)
    sql = (f"UPDATE {table} SET {', '.join(sets)} WHERE {' AND '.join(where)} "
           f"RETURNING {column['id']}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*set_params, *params])
        found = cursor.fetchone()
    return found[0] if found else None


def _updated(row: Reading | Seat, pk: int, **values: Any) -> Reading:
    """``row`` with what ``_update_open`` stored; for a seat, a reading holding only its key and
    those values (any other field is read from the database if asked for, as with ``only``)."""
    if isinstance(row, Reading):
        for name, value in values.items():
            setattr(row, name, value)
        return row
    values["id"] = pk
    names = [f.attname for f in Reading._meta.concrete_fields if f.attname in values]
    return Reading.from_db(connection.alias, names, [values[name] for name in names])


def _locked(reading: Reading) -> Reading:
    """The reading, row-locked; nothing changes a reading once its trial is locked."""
    locked = Reading.objects.select_for_update(of=("self",)).select_related(
        "assignment__case__trial", "draft").get(pk=reading.pk)
    if locked.case.trial.status == Trial.Status.LOCKED:
        raise Locked("The trial is locked.")
    check_not_withdrawn(locked.case)
    return locked


def _draft_distance(reading: Reading) -> int | None:
    """Characters from the draft the editor opened with to the report (stored at submission
    and amendment, so analyses and exports never recompute it)."""
    if reading.draft is None:
        return None
    return edit_distance(report_text(reading.draft.findings, reading.draft.impression),
                         report_text(reading.findings, reading.impression))


def open_reading(assignment: Assignment, *, user: Any) -> Reading:
    """The reading of ``assignment``, created on first open; a re-open records the gap."""
    now = timezone.now()
    with transaction.atomic():
        Assignment.objects.select_for_update().get(pk=assignment.pk)
        reading = Reading.objects.filter(assignment=assignment).first()
        if reading is None or reading.status == Reading.Status.OPEN:
            check_not_withdrawn(assignment.case)
        frozen = is_locked(assignment.case.trial_id)
        if reading is None and frozen:
            raise Locked("The trial is locked: no reading can start.")
        if reading is None:
            findings, impression, start, draft, deviation = _starting_text(assignment)
            reading = Reading.objects.create(
                assignment=assignment, findings=findings, impression=impression,
                started_from=start, draft=draft, deviation=deviation, opened_at=now,
                last_event_at=now,
            )
            _event(reading, ReadingEvent.Kind.OPENED, now)
            audit.record(action="reading.opened", obj=reading, actor=user,
                         trial=assignment.case.trial,
                         after={"started_from": start, "deviation": deviation})
            return reading
        if reading.status == Reading.Status.OPEN and not frozen:  # locked: look, never write
            gap = (now - reading.last_event_at).total_seconds()
            _event(reading, ReadingEvent.Kind.RESUMED, now, detail={"gap_s": round(gap, 3)})
            reading.last_event_at = now
            reading.save(update_fields=["last_event_at"])
        return reading


def record_event(reading: Reading | Seat, kind: str, *, client_at: datetime | None = None,
                 detail: dict | None = None, find: Callable[[], Reading] | None = None
                 ) -> Reading:
    """Log a page event; the first ``image_displayed`` starts the reading clock.

    ``reading`` may be a (reader, position) seat with ``find`` giving its reading (and the
    errors for none): a heartbeat then needs no query to find its reading."""
    if kind not in CLIENT_EVENTS:
        raise ReadingError(f"Unknown event {kind!r}; expected one of {sorted(CLIENT_EVENTS)}.")
    now = timezone.now()
    if kind != ReadingEvent.Kind.IMAGE_DISPLAYED:  # heartbeats etc.: every 10 s per reader
        with transaction.atomic():
            if pk := _update_open(reading, {"last_event_at": now}):
                ReadingEvent.objects.create(reading_id=pk, kind=kind, at=now,
                                            client_at=client_at, detail=detail or {})
                return _updated(reading, pk, last_event_at=now)
    if not isinstance(reading, Reading):
        reading = find()
    with transaction.atomic():
        locked = _locked(reading)
        if locked.status != Reading.Status.OPEN:
            raise Locked("The report is submitted.")
        _event(locked, kind, now, client_at=client_at, detail=detail)
        locked.last_event_at = now
        fields = ["last_event_at"]
        if kind == ReadingEvent.Kind.IMAGE_DISPLAYED and locked.first_image_at is None:
            locked.first_image_at = now
            fields.append("first_image_at")
        locked.save(update_fields=fields)
    return locked


def _write(locked: Reading, *, findings: str, impression: str, labels: Iterable[str] | None,
           version: int) -> None:
    if locked.status != Reading.Status.OPEN:
        raise Locked("The report is submitted; amend it with a reason instead.")
    if version != locked.version:
        raise StaleVersion(locked.version)
    locked.findings, locked.impression = findings, impression
    if labels is not None:
        locked.labels = sorted(set(labels))
    locked.version += 1


def _same(stored: Reading, findings: str, impression: str,
          labels: Iterable[str] | None) -> bool:
    return (stored.findings, stored.impression) == (findings, impression) and (
        labels is None or sorted(set(labels)) == list(stored.labels))


def autosave(reading: Reading | Seat, *, findings: str, impression: str, version: int,
             labels: Iterable[str] | None = None, find: Callable[[], Reading] | None = None
             ) -> Reading:
    """Store the editor's text if ``version`` is the stored one; returns the new version.
    ``reading`` may be a (reader, position) seat with ``find``, as for ``record_event``."""
    now = timezone.now()
    texts: dict[str, Any] = {"findings": findings, "impression": impression}
    if labels is not None:
        texts["labels"] = sorted(set(labels))
    with transaction.atomic():
        # The common case in one statement: open, this version, and new text. The same text
        # with other labels, or none at all, takes the full path (which tells them apart).
        if pk := _update_open(reading, {**texts, "last_event_at": now}, version=version,
                              unless={"findings": findings, "impression": impression}):
            ReadingEvent.objects.create(reading_id=pk, kind=ReadingEvent.Kind.AUTOSAVE, at=now,
                                        detail={"version": version + 1})
            return _updated(reading, pk, **texts, version=version + 1, last_event_at=now)
    if not isinstance(reading, Reading):
        reading = find()
    with transaction.atomic():
        locked = _locked(reading)
        if locked.status == Reading.Status.OPEN and _same(locked, findings, impression, labels):
            # Already stored, e.g. the closing page's last save landed after the reloaded page
            # read the reading: nothing to write, and no reason to call the tab stale.
            return locked
        _write(locked, findings=findings, impression=impression, labels=labels, version=version)
        locked.last_event_at = now
        locked.save(update_fields=["findings", "impression", "labels", "version",
                                   "last_event_at"])
        _event(locked, ReadingEvent.Kind.AUTOSAVE, now, detail={"version": locked.version})
    return locked


def timing(
    events: Iterable[ReadingEvent], *, start: datetime, end: datetime
) -> tuple[float, float]:
    """(active seconds, gap seconds) between ``start`` and ``end`` from the page's events.

    Between two consecutive events the page is active if it was last reported visible and
    focused; a stretch longer than LIVENESS with no event at all is a gap (the page was gone),
    never active time.
    """
    visible = focused = True
    active = gap = 0.0
    previous = start

    def close(at: datetime) -> None:
        nonlocal active, gap, previous
        span = (at - previous).total_seconds()
        if span > LIVENESS.total_seconds():
            gap += span
        elif visible and focused:
            active += span
        previous = at

    for event in sorted(events, key=lambda e: (e.at, e.pk or 0)):
        if event.at < start:
            continue
        close(min(event.at, end))
        if event.kind == ReadingEvent.Kind.HIDDEN:
            visible = False
        elif event.kind == ReadingEvent.Kind.VISIBLE:
            visible = True
        elif event.kind == ReadingEvent.Kind.BLUR:
            focused = False
        elif event.kind == ReadingEvent.Kind.FOCUS:
            focused = True
        elif event.kind == ReadingEvent.Kind.RESUMED:
            visible = focused = True
    close(end)
    return active, gap


def empty_section_flags(reading: Reading) -> list[str]:
    """``empty_findings`` / ``empty_impression`` for a section that is blank once stripped."""
    flags = []
    if not reading.findings.strip():
        flags.append(Reading.Flag.EMPTY_FINDINGS.value)
    if not reading.impression.strip():
        flags.append(Reading.Flag.EMPTY_IMPRESSION.value)
    return flags


def reading_flags(reading: Reading) -> list[str]:
    """The implausible-reading flags of a submitted reading, in a fixed order: a reading time
    under ``READING_MIN_SECONDS`` and the empty sections. For the coordinator only: a flag
    never blocks a submission and is never sent to the reader."""
    flags = []
    if reading.reading_time_s is not None and (
            reading.reading_time_s < settings.READING_MIN_SECONDS):
        flags.append(Reading.Flag.SHORT_READING.value)
    return flags + empty_section_flags(reading)


def submit(reading: Reading, *, findings: str, impression: str, version: int,
           labels: Iterable[str] | None = None, user: Any = None) -> Reading:
    """Store the final text and lock the reading; reading time on the server's clock."""
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(reading)
        _write(locked, findings=findings, impression=impression, labels=labels, version=version)
        if not (locked.findings.strip() or locked.impression.strip()):
            raise ReadingError("The report is empty.")
        start = locked.first_image_at or locked.opened_at
        locked.status, locked.submitted_at = Reading.Status.SUBMITTED, now
        locked.reading_time_s = (now - start).total_seconds()
        locked.active_time_s, locked.gap_s = timing(locked.events.all(), start=start, end=now)
        locked.edit_distance_from_draft = _draft_distance(locked)
        locked.flags = reading_flags(locked)
        locked.last_event_at = now
        locked.save()
        _event(locked, ReadingEvent.Kind.SUBMITTED, now)
        audit.record(action="reading.submitted", obj=locked, actor=user,
                     trial=locked.case.trial,
                     after={"reading_time_s": locked.reading_time_s,
                            "active_time_s": locked.active_time_s, "gap_s": locked.gap_s,
                            "version": locked.version, "flags": locked.flags})
    return locked


def _check_amendable(reading: Reading) -> None:
    if reading.case.trial.status == Trial.Status.LOCKED:
        raise Locked("The trial is locked.")
    if reading.status != Reading.Status.SUBMITTED:
        raise ReadingError("Only a submitted report is amended; this one is still open.")
    if Review.objects.filter(case_id=reading.assignment.case_id).exists():
        # The senior works from (or has signed against) the submitted text.
        raise Locked("The senior has started the final report of this case; ask the "
                     "coordinator.")


def amend(reading: Reading, *, findings: str, impression: str, reason: str, by: Any,
          password: str | None = None) -> Amendment:
    """Change a submitted report: needs a reason and ``by``'s electronic signature (the
    password re-entered now, ``trial.signatures``); the text before is kept and audited."""
    reason = (reason or "").strip()
    if not reason:
        raise ReadingError("An amendment needs a reason.")
    meaning = Signature.Meaning.AMENDMENT
    current = Reading.objects.select_related("assignment__case__trial").get(pk=reading.pk)
    trial = current.assignment.case.trial
    # Refusals that need no password first; then a wrong password is refused, and recorded,
    # before anything changes.
    _check_amendable(current)
    signatures.verify(by, password, meaning=meaning, obj=current, trial=trial)
    now = timezone.now()
    with transaction.atomic():
        locked = _locked(reading)
        _check_amendable(locked)
        amendment = Amendment.objects.create(
            reading=locked, reason=reason, by=by,
            before_findings=locked.findings, before_impression=locked.impression,
            after_findings=findings, after_impression=impression,
        )
        flags_before = list(locked.flags)
        locked.findings, locked.impression = findings, impression
        locked.version += 1
        locked.edit_distance_from_draft = _draft_distance(locked)
        # The empty sections are checked again; the reading time (short_reading) is as it was.
        locked.flags = [f for f in flags_before if f == Reading.Flag.SHORT_READING] + (
            empty_section_flags(locked))
        locked.save(update_fields=["findings", "impression", "version",
                                   "edit_distance_from_draft", "flags"])
        _event(locked, ReadingEvent.Kind.AMENDED, now, detail={"amendment": amendment.pk})
        audit.record(action="reading.amended", obj=locked, actor=by, trial=locked.case.trial,
                     before={"findings": amendment.before_findings,
                             "impression": amendment.before_impression,
                             "flags": flags_before},
                     after={"findings": findings, "impression": impression, "reason": reason,
                            "flags": locked.flags})
        signatures.sign(by, password, meaning=meaning, obj=amendment, trial=trial)
    return amendment
