"""Running an LLM tool's job (a text to label, a report to judge) as drafts are run.

A run claims the job (status running, a claim token and a lease) in a short transaction, calls
the tool's chat endpoint outside any transaction (within the tool's concurrency limit), and
stores the result only if it still holds the claim: a task delivered twice makes one result.
A reply that is not JSON of the required shape is an error like a timeout: retried with
backoff, then failed with its reason and the reply kept. Nothing is ever guessed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from drafting import limits
from drafting.backends import ModelError, post_chat, text_request
from drafting.run import Outcome, backoff, lease_margin

from . import prompts
from .models import ChatJob, Judgement, Labelling

logger = logging.getLogger(__name__)

SLOT_WAIT_S = 300.0
RAW_KEPT = 64 * 1024  # characters of a reply kept for the admin (a JSON answer is ~1 kB)
KINDS: dict[str, type[ChatJob]] = {"label": Labelling, "judge": Judgement}


def tool_of(job: ChatJob):
    return job.labeller if isinstance(job, Labelling) else job.judge


def _claim(model: type[ChatJob], pk: int) -> tuple[ChatJob | None, str | None, float | None]:
    now = timezone.now()
    tool_field = "labeller" if model is Labelling else "judge"
    with transaction.atomic():
        job = model.objects.select_for_update(of=("self",)).select_related(
            tool_field).filter(pk=pk).first()
        if job is None or job.status in (ChatJob.Status.DONE, ChatJob.Status.FAILED):
            return job, None, None
        if job.status == ChatJob.Status.RUNNING and job.lease_until and job.lease_until > now:
            return job, None, (job.lease_until - now).total_seconds() + 0.5
        tool = tool_of(job)
        job.status, job.claim = ChatJob.Status.RUNNING, uuid.uuid4().hex
        job.attempts += 1
        job.started_at = job.started_at or now
        job.lease_until = now + timedelta(seconds=tool.timeout_s + SLOT_WAIT_S) + lease_margin()
        job.save(update_fields=["status", "claim", "attempts", "started_at", "lease_until"])
    return job, job.claim, None


def _store(job: ChatJob, claim: str, **fields) -> bool:
    fields.setdefault("claim", "")
    fields.setdefault("lease_until", None)
    stored = type(job).objects.filter(pk=job.pk, claim=claim).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)
    return bool(stored)


def _messages(job: ChatJob, tool) -> list[dict]:
    if isinstance(job, Labelling):
        return prompts.label_messages(tool.prompt, job.text)
    return prompts.judge_messages(tool.prompt, job.reference, job.candidate)


def _parse(job: ChatJob, tool, reply: str) -> dict:
    if isinstance(job, Labelling):
        labels, unsure = prompts.parse_labels(reply, uncertain=tool.uncertain_policy)
        return {"labels": labels, "uncertain": unsure}
    return {"counts": prompts.parse_judgement(reply)}


def run_job(kind: str, pk: int) -> Outcome:
    """Label one text or judge one report (one call); see the module docstring."""
    job, claim, wait = _claim(KINDS[kind], pk)
    if job is None:
        return Outcome(pk, "gone")
    if claim is None:
        return Outcome(pk, job.status, retry_in=wait)
    tool = tool_of(job)
    if tool.fingerprint != job.fingerprint:
        return _fail(job, claim, "The tool's configuration changed after this was queued; "
                                 "run it again with the new configuration.")
    reply = None
    try:
        with limits.model_slot(tool.slot, limit=tool.concurrency, hold_s=tool.timeout_s + 5,
                               wait_s=SLOT_WAIT_S):
            lease = timezone.now() + timedelta(seconds=tool.timeout_s) + lease_margin()
            type(job).objects.filter(pk=job.pk, claim=claim).update(lease_until=lease)
            reply = post_chat(tool, text_request(tool, _messages(job, tool)))
        result = _parse(job, tool, reply.text)
    except limits.NoSlot:
        _store(job, claim, status=ChatJob.Status.QUEUED, attempts=job.attempts - 1)
        return Outcome(pk, ChatJob.Status.QUEUED, retry_in=backoff(1, 5.0))
    except (ModelError, prompts.InvalidReply) as exc:
        retryable = isinstance(exc, prompts.InvalidReply) or exc.retryable
        raw = reply.text[:RAW_KEPT] if reply is not None else ""
        if retryable and job.attempts < tool.max_attempts:
            delay = max(backoff(job.attempts, tool.retry_backoff_s),
                        getattr(exc, "retry_after", None) or 0)
            _store(job, claim, status=ChatJob.Status.QUEUED, error=str(exc), raw_response=raw,
                   sent_at=timezone.now() + timedelta(seconds=delay))
            return Outcome(pk, ChatJob.Status.QUEUED, retry_in=delay)
        reason = str(exc) if not retryable else (
            f"Gave up after {job.attempts} attempts; last error: {exc}")
        return _fail(job, claim, reason, raw_response=raw)
    _store(job, claim, status=ChatJob.Status.DONE, error="", raw_response=reply.text[:RAW_KEPT],
           model_reported=reply.model[:200], latency_ms=reply.latency_ms,
           finished_at=timezone.now(), **result)
    return Outcome(pk, ChatJob.Status.DONE)


def _fail(job: ChatJob, claim: str, reason: str, **fields) -> Outcome:
    _store(job, claim, status=ChatJob.Status.FAILED, error=reason, finished_at=timezone.now(),
           **fields)
    logger.warning("%s %s failed: %s", type(job).__name__, job.pk, reason)
    return Outcome(job.pk, ChatJob.Status.FAILED)
