"""The draft pipeline: queue a draft for a case, run it once, retry it, sweep up what was lost.

A draft row is created (queued) before its task is sent, so a broker that is down loses
nothing: ``sweep`` (periodic) and ``manage.py generate_drafts`` send it again. A run *claims*
the draft (status running, a random claim token and a lease) in a short transaction, calls the
model outside any transaction, and stores the result only if it still holds the claim. So a
task delivered twice (``acks_late`` after a worker died, a sweep, a retry) never makes two
drafts: one row per case and endpoint fingerprint, and a finished draft is left alone.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from .. import audit
from ..models import Case, Draft, ModelEndpoint, Trial
from ..models.drafts import PROMPT_FIELDS
from . import limits
from .backends import ModelError, call_model
from .parsing import UnparseableReply, parse_report
from .preprocess import model_png

logger = logging.getLogger(__name__)

BACKOFF_CAP_S = 300.0
SLOT_WAIT_S = 300.0  # then the task is re-queued without spending an attempt
STALE = timedelta(minutes=15)  # a queued draft not picked up for this long is sent again


def lease_margin() -> timedelta:
    return timedelta(seconds=getattr(settings, "DRAFT_LEASE_MARGIN_S", 30))


def active_endpoint(trial: Trial) -> ModelEndpoint | None:
    return ModelEndpoint.objects.filter(trial=trial, active=True).first()


def current_draft(case: Case) -> Draft | None:
    """The draft of ``case`` by its trial's endpoint as configured now (None if none)."""
    return current_drafts(case.trial, [case.pk]).get(case.pk)


def current_drafts(trial: Trial, case_ids: Iterable[int]) -> dict[int, Draft]:
    """Case id -> its current draft, for many cases in two queries (a worklist's length)."""
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return {}
    drafts = Draft.objects.filter(case_id__in=list(case_ids), fingerprint=endpoint.fingerprint)
    return {draft.case_id: draft for draft in drafts}


def build_prompt(endpoint: ModelEndpoint, case: Case) -> str:
    """The endpoint's template filled with the case's clinical history."""
    values = {field: str(getattr(case, field) or "").strip() or "not recorded"
              for field in PROMPT_FIELDS}
    values["sex"] = case.get_sex_display() if case.sex else "not recorded"
    return endpoint.prompt_template.format(**values)


# --- queueing ----------------------------------------------------------------------------

def ensure_draft(case: Case, endpoint: ModelEndpoint) -> Draft:
    """The draft row of ``case`` for ``endpoint``'s configuration, created queued if missing."""
    draft, _ = Draft.objects.get_or_create(
        case=case, fingerprint=endpoint.fingerprint,
        defaults={"endpoint": endpoint, "config": endpoint.config(), "backend": endpoint.backend,
                  "queued_at": timezone.now()},
    )
    return draft


def send(draft: Draft) -> bool:
    """Hand the draft's task to the queue; False (logged) if the broker cannot take it now."""
    from ..tasks import generate_draft

    try:
        generate_draft.apply_async((draft.case_id,), retry=False)
    except Exception:  # broker down or unreachable: the sweep sends it later
        logger.warning("Could not queue the draft of case %s; the sweep will retry",
                       draft.case_id, exc_info=True)
        return False
    Draft.objects.filter(pk=draft.pk, status=Draft.Status.QUEUED).update(sent_at=timezone.now())
    return True


def queue_draft(case: Case) -> Draft | None:
    """Make sure ``case`` gets a draft from its trial's active endpoint (None if it has none).

    Called on enrolment; sends the task only for a queued draft (a done or failed one stays).
    """
    endpoint = active_endpoint(case.trial)
    if endpoint is None or case.status != Case.Status.ENROLLED:
        return None
    draft = ensure_draft(case, endpoint)
    if draft.status == Draft.Status.QUEUED:
        send(draft)
    return draft


def requeue_failed(draft: Draft, *, by=None) -> Draft | None:
    """Put a failed draft back in the queue (attempts start again), audited, without sending it.

    Returns the re-queued draft, or None if it is not failed (any more: someone else may have
    retried it meanwhile) or is a draft of an earlier configuration: its task would run the
    case's current draft instead, and the old one would stay queued for ever.
    """
    endpoint = active_endpoint(draft.case.trial)
    if endpoint is None or draft.fingerprint != endpoint.fingerprint:
        return None
    with transaction.atomic():
        locked = Draft.objects.select_for_update().get(pk=draft.pk)
        if locked.status != Draft.Status.FAILED:
            return None
        before = {"status": locked.status, "error": locked.error, "attempts": locked.attempts}
        locked.status, locked.attempts, locked.error = Draft.Status.QUEUED, 0, ""
        locked.queued_at, locked.sent_at = timezone.now(), None
        locked.save(update_fields=["status", "attempts", "error", "queued_at", "sent_at"])
        audit.record(action="draft.retried", obj=locked, actor=by, trial=draft.case.trial,
                     before=before, after={"status": locked.status})
    return locked


def retry_failed(draft: Draft, *, by=None) -> bool:
    """Re-queue a failed draft (``requeue_failed``) and send it; False if it was not re-queued.

    True once re-queued, even if the broker could not take it now: the draft stays queued and
    the periodic sweep sends it (callers read False as "refused"). To tell "not sent" apart,
    call ``requeue_failed`` and ``send`` as ``generate_drafts`` does.
    """
    requeued = requeue_failed(draft, by=by)
    if requeued is None:
        return False
    send(requeued)
    return True


def pending_drafts(trial: Trial) -> tuple[ModelEndpoint | None, QuerySet[Case]]:
    """The active endpoint and the enrolled cases of ``trial`` that have no draft from it yet."""
    endpoint = active_endpoint(trial)
    if endpoint is None:
        return None, Case.objects.none()
    cases = Case.objects.filter(trial=trial, status=Case.Status.ENROLLED).exclude(
        drafts__fingerprint=endpoint.fingerprint
    )
    return endpoint, cases


def sweep(*, now=None) -> int:
    """Send again what may have been lost; returns how many drafts were sent.

    Enrolled cases with no draft from their trial's endpoint, queued drafts never sent or not
    picked up for ``STALE``, and running drafts whose lease ran out ``STALE`` ago (their worker
    died and its message is gone).
    """
    now = now or timezone.now()
    sent = 0
    lost = (Q(status=Draft.Status.QUEUED) & (Q(sent_at__isnull=True) | Q(sent_at__lt=now - STALE))
            | Q(status=Draft.Status.RUNNING, lease_until__lt=now - STALE))
    for endpoint in ModelEndpoint.objects.filter(active=True).select_related("trial"):
        _, cases = pending_drafts(endpoint.trial)
        for case in cases:
            sent += send(ensure_draft(case, endpoint))
        # Only drafts of the configuration in force: a task always makes the current one.
        stale = Draft.objects.filter(lost, case__trial=endpoint.trial,
                                     fingerprint=endpoint.fingerprint)
        for draft in stale:
            sent += send(draft)
    return sent


# --- running -----------------------------------------------------------------------------

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


def _claim(case_pk: int) -> tuple[Draft | None, str | None, float | None]:
    """Take the case's current draft for this run: (draft, claim token, or seconds to wait)."""
    case = Case.objects.select_related("trial").filter(pk=case_pk).first()
    endpoint = active_endpoint(case.trial) if case else None
    if endpoint is None:
        return None, None, None
    ensure_draft(case, endpoint)
    now = timezone.now()
    with transaction.atomic():
        # Lock the draft row only (not its case, trial and endpoint: other drafts' claims).
        draft = Draft.objects.select_for_update(of=("self",)).select_related(
            "case__trial", "endpoint"
        ).get(case=case, fingerprint=endpoint.fingerprint)
        if draft.status in (Draft.Status.DONE, Draft.Status.FAILED):
            return draft, None, None
        if draft.status == Draft.Status.RUNNING and draft.lease_until and draft.lease_until > now:
            # Another run holds it; if that worker died, its lease runs out and this one takes over.
            return draft, None, (draft.lease_until - now).total_seconds() + 0.5
        draft.status, draft.claim = Draft.Status.RUNNING, uuid.uuid4().hex
        # The endpoint in force now (same fingerprint, but maybe a replacement row with
        # another key variable, timeout or concurrency) is the one that makes it.
        draft.endpoint = endpoint
        draft.attempts += 1
        draft.started_at = draft.started_at or now
        draft.lease_until = now + timedelta(seconds=endpoint.timeout_s + SLOT_WAIT_S) + (
            lease_margin())
        draft.save(update_fields=["status", "claim", "endpoint", "attempts", "started_at",
                                  "lease_until"])
    return draft, draft.claim, None


def _store(draft: Draft, claim: str, **fields) -> bool:
    """Write ``fields`` if this run still holds the draft; False if another run took it over."""
    fields.setdefault("claim", "")
    fields.setdefault("lease_until", None)
    with transaction.atomic():
        stored = Draft.objects.filter(pk=draft.pk, claim=claim).update(**fields)
        if stored and fields.get("status") in (Draft.Status.DONE, Draft.Status.FAILED):
            for name, value in fields.items():  # what was stored, without reading it back
                setattr(draft, name, value)
            audit.record(action=f"draft.{draft.status}", obj=draft, trial=draft.case.trial,
                         after={"fingerprint": draft.fingerprint, "backend": draft.backend,
                                "attempts": draft.attempts, "error": draft.error})
    return bool(stored)


def run_draft(case_pk: int) -> Outcome:
    """Make the draft of case ``case_pk`` (one model call); see the module docstring."""
    draft, claim, wait = _claim(case_pk)
    if draft is None:
        return Outcome(case_pk, "no-endpoint")
    if claim is None:
        return Outcome(case_pk, draft.status, retry_in=wait)
    endpoint, case = draft.endpoint, draft.case
    try:
        image = case.images.order_by("pk").first()
        if image is None:
            raise CannotDraft("The case has no image to send.")
        png = model_png(image, size=endpoint.image_size, pad=endpoint.pad_value)
        prompt = build_prompt(endpoint, case)
        with limits.model_slot(endpoint.pk, limit=endpoint.concurrency,
                               hold_s=endpoint.timeout_s + 5, wait_s=SLOT_WAIT_S):
            # Slot taken: from now the call lasts at most the timeout; a takeover may follow.
            lease = timezone.now() + timedelta(seconds=endpoint.timeout_s) + lease_margin()
            Draft.objects.filter(pk=draft.pk, claim=claim).update(lease_until=lease)
            reply = call_model(endpoint, prompt=prompt, png=png)
    except limits.NoSlot:
        _store(draft, claim, status=Draft.Status.QUEUED, attempts=draft.attempts - 1)
        return Outcome(case_pk, Draft.Status.QUEUED, retry_in=backoff(1, 5.0))
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
    except (OSError, ValueError) as exc:  # unreadable stored image
        return _fail(draft, claim, f"Cannot prepare the image: {exc}")
    try:
        findings, impression = parse_report(reply.text)
    except UnparseableReply as exc:
        return _fail(draft, claim, str(exc), raw_response=reply.text, model_reported=reply.model)
    finished = timezone.now()
    _store(
        draft, claim, status=Draft.Status.DONE, findings=findings, impression=impression,
        raw_response=reply.text, error="", model_reported=reply.model[:200],
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
