"""Drafting's Celery side: the tasks, and handing drafts to the queue (the only module here that
knows Celery). Without ``REDIS_URL`` tasks run in-process (``in_process``), as they are sent.

Tasks take primary keys and are safe to run twice (``acks_late``: a worker that dies mid-task
gets the task again; ``drafting.run`` makes sure that still makes one draft). The first two
keep the names they had in ``trial.tasks``, so messages queued by an earlier release still run.

Sending never waits for a broker that is down: the send fails at once (no connection retries,
short socket timeouts) and the draft stays queued for the sweep, so enrolment never blocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import kombu
import kombu.pools
from celery import Task, shared_task
from django.conf import settings
from django.db import connection
from django.utils import timezone

from trial.models import Case, Trial

from . import queue, run
from .models import Draft

logger = logging.getLogger(__name__)


def in_process() -> bool:
    """True when there is no broker: a sent task runs here and now, before ``send`` returns."""
    return bool(generate_draft.app.conf.task_always_eager)


@shared_task(name="trial.tasks.generate_draft", bind=True, acks_late=True,
             reject_on_worker_lost=True, max_retries=None, ignore_result=True)
def generate_draft(self, case_pk: int) -> dict:
    """Make the AI draft of case ``case_pk`` (safe to run twice: see ``drafting.run``).

    Retries are scheduled by the run (backoff with jitter, capped by the endpoint's
    max_attempts). Run in-process (no broker), the wait happens here instead.
    """
    return run_with_retries(self, lambda: run.run_draft(case_pk))


def run_with_retries(task: Task, step: Callable[[], run.Outcome]) -> dict:
    """Run ``step`` until it asks for no retry: on a worker the retry is a task retry with the
    outcome's countdown (the worker is free meanwhile); in-process the wait is slept here."""
    while True:
        outcome = step()
        if outcome.retry_in is None:
            return outcome.as_dict()
        if task.request.is_eager:
            time.sleep(outcome.retry_in)
            continue
        raise task.retry(countdown=outcome.retry_in)


@shared_task(name="trial.tasks.sweep_drafts", ignore_result=True)
def sweep_drafts() -> int:
    """Periodic (celery beat): send again the drafts that were never sent or were lost."""
    return sweep()


@shared_task(name="drafting.tasks.take_over_drafts", ignore_result=True)
def take_over_drafts() -> int:
    """Periodic (celery beat, every DRAFT_TAKEOVER_SECONDS): a draft whose worker died is sent
    again once its lease runs out, not when Redis re-delivers its task an hour later."""
    return take_over()


@shared_task(name="drafting.tasks.check_endpoint", ignore_result=True)
def check_endpoint_task(check_pk: int) -> str:
    """One test request to a model endpoint, asked for in the admin (``drafting.checks``): run
    by a worker, whose environment holds the API key."""
    from .checks import run_check

    return run_check(check_pk)


def send_timeout() -> float:
    """Seconds a send may wait for the broker (connect, then each reply) before giving up."""
    return float(getattr(settings, "DRAFT_SEND_TIMEOUT_S", 1.0))


def producers() -> kombu.pools.ProducerPool:
    """Producers on connections that fail at once when the broker is down.

    Celery's own pool retries the connection for about 6 s (kombu's ``default_channel``
    ignores ``retry=False``) and has no socket timeouts; these are kombu's ``max_retries: 0``
    and redis-py's socket timeouts. One pool per process and settings (``kombu.pools``, keyed
    by the connection's parameters); the connection describing them is made once per
    settings, not per send.
    """
    app = generate_draft.app
    timeout = send_timeout()
    options = {**app.conf.broker_transport_options, "max_retries": 0,
               "socket_connect_timeout": timeout, "socket_timeout": timeout}
    url = app.conf.broker_write_url or app.conf.broker_url
    key = (url, repr(sorted(options.items())))
    described = _send_connections.get(key)
    if described is None:
        described = _send_connections[key] = app.connection_for_write(
            url, transport_options=options)
    return kombu.pools.producers[described]


# Connection parameters per (broker URL, options): never connected themselves (a pool makes
# its connections from their parameters), so sharing them between threads and sends is safe.
_send_connections: dict[tuple[str, str], kombu.Connection] = {}


def send_task(task: Task, args: tuple, *, what: str) -> bool:
    """Hand ``task(*args)`` to the queue without waiting for a broker that is down; False
    (logged) if it cannot take it now (the caller's sweep sends it later)."""
    try:
        if in_process():
            task.apply_async(args)
        else:
            with producers().acquire(block=True, timeout=send_timeout()) as producer:
                task.apply_async(args, retry=False, producer=producer)
    except Exception:  # broker down or unreachable: the sweep sends it later
        logger.warning("Could not queue %s; the sweep will retry", what, exc_info=True)
        return False
    return True


def send(draft: Draft) -> bool:
    """Hand the draft's task to the queue; False (logged) if the broker cannot take it now."""
    if not send_task(generate_draft, (draft.case_id,), what=f"the draft of case {draft.case_id}"):
        return False
    with connection.cursor() as cursor:  # one short statement while the worker starts on it
        cursor.execute("UPDATE trial_draft SET sent_at = %s WHERE id = %s AND status = %s",
                       [connection.ops.adapt_datetimefield_value(timezone.now()), draft.pk,
                        Draft.Status.QUEUED])
    return True


def queue_draft(case: Case) -> Draft | None:
    """Make sure ``case`` gets a draft from its trial's active endpoint (None if it has none).

    Called when enrolment commits; sends the task only for a queued draft (a done or failed one
    stays).
    """
    draft = queue.enrolled_draft(case)
    if draft is not None and draft.status == Draft.Status.QUEUED:
        send(draft)
    return draft


def queue_missing(trial: Trial, *, by=None) -> int | None:
    """Queue and send a draft for every enrolled case of ``trial`` that has none (audited).

    Returns how many were queued, or None when the trial has no active endpoint.
    """
    drafts = queue.add_missing(trial, by=by)
    if drafts is None:
        return None
    for draft in drafts:
        if draft.status == Draft.Status.QUEUED:
            send(draft)
    return len(drafts)


def retry_failed(draft: Draft, *, by=None) -> bool:
    """Re-queue a failed draft (``queue.requeue_failed``) and send it; False if refused.

    True once re-queued, even if the broker could not take it now: the draft stays queued and
    the periodic sweep sends it. To tell "not sent" apart, call ``queue.requeue_failed`` and
    ``send`` as ``generate_drafts`` does.
    """
    requeued = queue.requeue_failed(draft, by=by)
    if requeued is None:
        return False
    send(requeued)
    return True


def sweep(*, now: datetime | None = None) -> int:
    """Send again what may have been lost (``queue.lost_drafts``); returns how many were sent."""
    return sum(send(draft) for draft in queue.lost_drafts(now=now))


def take_over(*, now: datetime | None = None) -> int:
    """Send again the drafts whose lease ran out (``queue.take_over_expired``); how many."""
    return sum(send(draft) for draft in queue.take_over_expired(now=now))
