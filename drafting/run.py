"""Running a draft: claim it, call the model once, store the result if the claim still holds.

A run takes one of the endpoint's model slots, *claims* the draft (status running, a random
claim token and a lease) in one UPDATE, calls the model outside any transaction, and stores the
result only if it still holds the claim (one UPDATE whose WHERE checks the claim and the
status). So a task delivered twice (``acks_late`` after a worker died, a sweep, a retry) never
makes two drafts: one row per case and endpoint fingerprint, and a finished draft is left
alone. Returns an ``Outcome``; scheduling a retry is the caller's (``drafting.tasks``).
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from trial import audit
from trial.models import AuditEvent, Case, Image, Trial

from . import limits
from .backends import ModelError, call_model
from .models import PROMPT_FIELDS, Draft, ModelEndpoint, PromptTemplateError
from .parsing import UnparseableReply, parse_report, report_warning
from .preprocess import model_png
from .queries import build_prompt
from .queue import ensure_draft

logger = logging.getLogger(__name__)

BACKOFF_CAP_S = 300.0
SLOT_WAIT_S = 300.0  # then the task is re-queued without spending an attempt


def lease_margin() -> timedelta:
    return timedelta(seconds=getattr(settings, "DRAFT_LEASE_MARGIN_S", 30))


class CannotDraft(Exception):
    """Nothing to send the model (no image): fails the draft at once."""


@dataclass(frozen=True)
class Outcome:
    """What a run did; ``retry_in`` (seconds) asks the caller to run again later."""

    case: int
    status: str
    retry_in: float | None = None

    def as_dict(self) -> dict:
        return {"case": self.case, "status": self.status}


def backoff(attempt: int, base: float) -> float:
    """Exponential backoff with jitter: about base, 2 base, 4 base... at most BACKOFF_CAP_S."""
    delay = min(BACKOFF_CAP_S, base * 2 ** max(attempt - 1, 0))
    return delay / 2 + random.uniform(0, delay / 2)


def endpoint_of(case_pk: int) -> ModelEndpoint | None:
    """The active endpoint of the case's trial, in one query (None if none, or no such case)."""
    return ModelEndpoint.objects.filter(active=True, trial__cases=case_pk).first()


# A run's three statements (``draft_inputs``, ``_take``, ``_store``) are SQL written here once:
# building and compiling the same ORM queries cost more than their round trips (2-4 ms of
# Python each on a busy 2-CPU host, against 0.2-0.4 ms for the round trip). The rare paths
# (a missing row, a refused claim) use the ORM.

# What a run reads of the case (its prompt, its name in logs and audit) and of its first image
# (the PNG's content address; the stored file if the PNG must be made).
CASE_FIELDS = ("case_id", "trial_id", *PROMPT_FIELDS)
IMAGE_FIELDS = ("id", "file", "sha256")


INPUTS_SQL = (
    "SELECT e.*, "
    + ", ".join(f"c.{name} AS for_case_{name}" for name in CASE_FIELDS) + ", "
    + ", ".join(f"i.{name} AS first_image_{name}" for name in IMAGE_FIELDS)
    + " FROM trial_modelendpoint e JOIN trial_case c ON c.trial_id = e.trial_id"
    " LEFT JOIN trial_image i ON i.id = (SELECT MIN(id) FROM trial_image WHERE case_id = c.id)"
    " WHERE e.active AND c.id = %s"
)


def draft_inputs(case_pk: int) -> tuple[ModelEndpoint, Case, Image | None] | None:
    """The active endpoint of the case's trial, the case and its first image (None if it has
    none), in one query; None when the trial has no active endpoint (or there is no case).

    The case and the image hold only what a run reads (``CASE_FIELDS``, ``IMAGE_FIELDS``):
    any other field is loaded if asked for, as a deferred field is.
    """
    rows = list(ModelEndpoint.objects.raw(INPUTS_SQL, [case_pk]))
    if not rows:
        return None
    endpoint = rows[0]  # one active endpoint per trial (a constraint)
    db = endpoint._state.db
    case = _loaded(Case, db, id=case_pk, **{name: getattr(endpoint, f"for_case_{name}")
                                            for name in CASE_FIELDS})
    case.trial = _loaded(Trial, db, id=case.trial_id)  # the audit's; the rest deferred
    image = None
    if endpoint.first_image_id is not None:
        image = _loaded(Image, db, case_id=case_pk, **{
            name: getattr(endpoint, f"first_image_{name}") for name in IMAGE_FIELDS})
        image.case = case
    return endpoint, case, image


def _loaded(model, db: str, **values):
    """An instance of ``model`` as loaded from the database with only ``values`` (attnames):
    its other fields deferred (read from the database if asked for)."""
    names = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db(db, names, [values[name] for name in names])


def _db(value):
    """A datetime as the database takes it in raw SQL (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def _take(case_pk: int, endpoint: ModelEndpoint, claim: str, now, lease) -> Draft | None:
    """One statement: the case's draft of this configuration, if queued or its lease ran out,
    becomes running under ``claim`` until ``lease`` (the row as updated), else None."""
    rows = list(Draft.objects.raw(
        "UPDATE trial_draft SET status = %s, claim = %s, endpoint_id = %s, "
        "attempts = attempts + 1, started_at = COALESCE(started_at, %s), lease_until = %s "
        "WHERE case_id = %s AND fingerprint = %s AND (status = %s OR (status = %s AND "
        "(lease_until IS NULL OR lease_until <= %s))) RETURNING *",
        [Draft.Status.RUNNING, claim, endpoint.pk, _db(now), _db(lease), case_pk,
         endpoint.fingerprint, Draft.Status.QUEUED, Draft.Status.RUNNING, _db(now)]))
    return rows[0] if rows else None


def _claim(case_pk: int, endpoint: ModelEndpoint | None = None, *,
           case: Case | None = None) -> tuple[Draft | None, str | None, float | None]:
    """Take the case's current draft for this run: (draft, claim token, or seconds to wait).

    One UPDATE ... RETURNING takes a queued draft, or a running one whose lease ran out (its
    run stopped), with a new claim token and a lease of the model timeout plus the margin (the
    caller holds a model slot already, so the call starts now). Only when nothing was taken is
    the row read, to tell a finished draft, a live lease (another run holds it) and a missing
    row (made queued, then taken) apart.
    """
    endpoint = endpoint or endpoint_of(case_pk)
    if endpoint is None:
        return None, None, None
    draft = None
    for _ in range(3):
        now = timezone.now()
        claim = uuid.uuid4().hex
        lease = now + timedelta(seconds=endpoint.timeout_s) + lease_margin()
        taken = _take(case_pk, endpoint, claim, now, lease)
        if taken is not None:
            # The endpoint in force now (same fingerprint, but maybe a replacement row with
            # another key variable, timeout or concurrency) is the one that makes it.
            taken.endpoint = endpoint
            if case is not None:
                taken.case = case
            return taken, claim, None
        draft = Draft.objects.filter(case_id=case_pk, fingerprint=endpoint.fingerprint).first()
        if draft is None:
            ensure_draft(case or Case.objects.get(pk=case_pk), endpoint)
            continue
        if draft.status in (Draft.Status.DONE, Draft.Status.FAILED):
            return draft, None, None
        if draft.status == Draft.Status.RUNNING and draft.lease_until and draft.lease_until > now:
            # Another run holds it; if that worker died, its lease runs out and this one takes over.
            return draft, None, (draft.lease_until - now).total_seconds() + 0.5
        # Queued again, or its lease ran out, between the two statements: take it now.
    return draft, None, 1.0


def _store(draft: Draft, claim: str, **fields) -> bool:
    """Write ``fields`` if this run still holds the draft; False if another run took it over.

    One UPDATE whose WHERE checks the claim and that the draft is still running. A draft that
    ends (done or failed) gets its audit event written with it, both or neither: on PostgreSQL
    in the same statement (a WITH whose UPDATE feeds the INSERT: no BEGIN and COMMIT round
    trips), elsewhere in one transaction."""
    fields.setdefault("claim", "")
    fields.setdefault("lease_until", None)
    assignments, params = [], []
    for name, value in fields.items():  # as QuerySet.update() would write them
        field = Draft._meta.get_field(name)
        assignments.append(f"{field.column} = %s")
        params.append(field.get_db_prep_save(value, connection))
    update = (f"UPDATE trial_draft SET {', '.join(assignments)} "
              "WHERE id = %s AND claim = %s AND status = %s")
    params += [draft.pk, claim, Draft.Status.RUNNING]
    if fields.get("status") not in (Draft.Status.DONE, Draft.Status.FAILED):
        return _execute(update, params) > 0
    kept = {name: getattr(draft, name) for name in fields}
    for name, value in fields.items():  # what is stored, without reading it back
        setattr(draft, name, value)
    if single_statement_store():
        insert, columns = _event_insert()
        event = ended_event(draft)
        values = [field.get_db_prep_save(field.pre_save(event, add=True), connection)
                  for field in columns]
        stored = _execute(f"WITH stored AS ({update} RETURNING 1) {insert}",
                          [*params, *values]) > 0
    else:
        with transaction.atomic():
            stored = _execute(update, params) > 0
            if stored:
                audit.record(**ended_record(draft))
    if not stored:
        for name, value in kept.items():
            setattr(draft, name, value)
    return stored


def _execute(statement: str, params: list) -> int:
    """Run one statement; the number of rows it wrote."""
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def single_statement_store() -> bool:
    """Whether a row and its audit event are written in one statement (PostgreSQL; SQLite,
    the demo's database, has no UPDATE in a WITH)."""
    return connection.vendor == "postgresql"


@cache
def _event_insert() -> tuple[str, list]:
    """``INSERT INTO trial_auditevent (...) SELECT %s::type, ... FROM stored`` and its fields
    in order: one event per row the WITH's UPDATE wrote (PostgreSQL)."""
    columns = [field for field in AuditEvent._meta.concrete_fields if not field.primary_key]
    return (f"INSERT INTO {AuditEvent._meta.db_table} "
            f"({', '.join(field.column for field in columns)}) "
            f"SELECT {', '.join(f'%s::{field.db_type(connection)}' for field in columns)} "
            "FROM stored"), columns


def ended_record(draft: Draft) -> dict:
    """``trial.audit.record``'s arguments for a draft that ended (done or failed)."""
    return {"action": f"draft.{draft.status}", "obj": draft, "trial": draft.case.trial,
            "after": {"fingerprint": draft.fingerprint, "backend": draft.backend,
                      "attempts": draft.attempts, "error": draft.error,
                      "warning": draft.warning}}


def ended_event(draft: Draft) -> AuditEvent:
    """The same event unsaved, made as ``trial.audit.record`` makes it (no actor: the
    system), for ``_store`` to insert with its UPDATE."""
    record = ended_record(draft)
    obj = record["obj"]
    return AuditEvent(trial=record["trial"], actor=None, action=record["action"],
                      object_type=getattr(obj, "audit_type", obj._meta.label),
                      object_id=str(obj.pk), object_repr=str(obj)[:200], before=None,
                      after=record["after"])


def run_draft(case_pk: int) -> Outcome:
    """Make the draft of case ``case_pk`` (one model call); see the module docstring.

    Per draft: one read (the endpoint, the case and its first image), one Redis call for a
    model slot, one UPDATE for the claim, the model call, the result stored with its audit
    event (``_store``), then one Redis call to free the slot. The image is read from the PNG
    made at import (``preprocess``).
    """
    inputs = draft_inputs(case_pk)
    if inputs is None:
        return Outcome(case_pk, "no-endpoint")
    endpoint, case, image = inputs
    try:
        # The slot first, so the claim's lease need only cover the call (never renewed). It is
        # freed once the result is stored: a store longer, but off the path to the draft.
        with limits.model_slot(endpoint.pk, limit=endpoint.concurrency,
                               hold_s=endpoint.timeout_s + 5, wait_s=SLOT_WAIT_S):
            draft, claim, wait = _claim(case_pk, endpoint, case=case)
            if claim is None:
                status = draft.status if draft is not None else Draft.Status.QUEUED
                return Outcome(case_pk, status, retry_in=wait)
            return _make(draft, claim, endpoint, image)
    except limits.NoSlot:  # nothing was claimed: the draft stays as it is
        return Outcome(case_pk, Draft.Status.QUEUED, retry_in=backoff(1, 5.0))


def _make(draft: Draft, claim: str, endpoint: ModelEndpoint, image: Image | None) -> Outcome:
    """Call the model for the claimed draft and store what came of it."""
    case_pk = draft.case_id
    try:
        if image is None:
            raise CannotDraft("The case has no image to send.")
        png = model_png(image, size=endpoint.image_size, pad=endpoint.pad_value)
        prompt = build_prompt(endpoint, draft.case)
        reply = call_model(endpoint, prompt=prompt, png=png)
    except ModelError as exc:
        if exc.retryable and draft.attempts < endpoint.max_attempts:
            delay = max(backoff(draft.attempts, endpoint.retry_backoff_s), exc.retry_after or 0)
            _store(draft, claim, status=Draft.Status.QUEUED, error=str(exc),
                   sent_at=timezone.now() + timedelta(seconds=delay))
            return Outcome(case_pk, Draft.Status.QUEUED, retry_in=delay)
        reason = str(exc) if not exc.retryable else (
            f"Gave up after {draft.attempts} attempts; last error: {exc}")
        return _fail(draft, claim, reason)
    except CannotDraft as exc:
        return _fail(draft, claim, str(exc))
    except PromptTemplateError as exc:  # saved before templates were checked
        return _fail(draft, claim, f"The endpoint's prompt template is invalid: {exc.message}")
    except (OSError, ValueError) as exc:  # unreadable stored image
        return _fail(draft, claim, f"Cannot prepare the image: {exc}")
    try:
        findings, impression = parse_report(reply.text)
    except UnparseableReply as exc:
        return _fail(draft, claim, str(exc), raw_response=reply.text, model_reported=reply.model)
    warning = report_warning(reply.text, findings, impression)
    if warning:
        logger.warning("Draft of case %s is done with a warning: %s", draft.case.case_id, warning)
    finished = timezone.now()
    _store(
        draft, claim, status=Draft.Status.DONE, findings=findings, impression=impression,
        raw_response=reply.text, error="", warning=warning, model_reported=reply.model[:200],
        prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
        model_latency_ms=reply.latency_ms, finished_at=finished,
        total_latency_ms=round((finished - draft.queued_at).total_seconds() * 1000),
    )
    return Outcome(case_pk, Draft.Status.DONE)


def _fail(draft: Draft, claim: str, reason: str, **fields) -> Outcome:
    _store(draft, claim, status=Draft.Status.FAILED, error=reason, finished_at=timezone.now(),
           **fields)
    logger.warning("Draft of case %s failed: %s", draft.case.case_id, reason)
    return Outcome(draft.case_id, Draft.Status.FAILED)
