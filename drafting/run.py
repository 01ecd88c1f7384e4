"""Running a draft: claim it, call the model once, store the result if the claim still holds.

A run *claims* the draft (status running, a random claim token and a lease) in a short
transaction, calls the model outside any transaction, and stores the result only if it still
holds the claim. So a task delivered twice (``acks_late`` after a worker died, a sweep, a
retry) never makes two drafts: one row per case and endpoint fingerprint, and a finished draft
is left alone. Returns an ``Outcome``; scheduling a retry is the caller's (``drafting.tasks``).
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from trial import audit
from trial.models import Case

from . import limits
from .backends import ModelError, call_model
from .models import Draft, PromptTemplateError
from .parsing import UnparseableReply, parse_report, report_warning
from .preprocess import model_png
from .queries import active_endpoint, build_prompt
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
                                "attempts": draft.attempts, "error": draft.error,
                                "warning": draft.warning})
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
