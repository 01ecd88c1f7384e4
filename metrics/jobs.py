"""Labelling and judging work: one row per text (or pair) and tool configuration, made once.

``label`` makes sure every given text has its ``Labelling`` by the labeller's current
configuration: the rule-based labeller labels at once (rows stored done), an LLM labeller's
rows are queued for the worker (``metrics.tasks`` sends them). A text already labelled by that
configuration is left alone, so a second run makes no second call. ``judge`` does the same for
(reference, candidate) pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trial import audit
from trial.models import Trial

from . import rules
from .models import ChatJob, Judge, Judgement, Labeller, Labelling, text_hash

BATCH = 1000
STALE = timedelta(minutes=10)  # queued and sent this long ago without a start: send again


def distinct(texts: Iterable[str]) -> dict[str, str]:
    """Non-empty texts by their hash (each text once)."""
    return {text_hash(text): text for text in texts if text.strip()}


def rules_labeller(trial: Trial) -> Labeller:
    """The trial's rule-based labeller (made on first use: it needs no configuration)."""
    labeller = Labeller.objects.filter(trial=trial, kind=Labeller.Kind.RULES).order_by(
        "pk").first()
    return labeller or Labeller.objects.create(trial=trial, kind=Labeller.Kind.RULES,
                                               name="Rule-based labeller")


def label(labeller: Labeller, texts: Iterable[str], *,
          progress: Callable[[int, int], None] | None = None) -> list[Labelling]:
    """The labellings of ``texts`` by ``labeller``'s configuration, made where missing.

    Returns the rows that are new (queued for an LLM labeller, done for the rule-based one).
    ``progress(done, total)`` is called as texts are labelled or queued.
    """
    wanted = distinct(texts)
    fingerprint = labeller.fingerprint
    have = set()
    keys = list(wanted)
    for start in range(0, len(keys), BATCH):
        have.update(Labelling.objects.filter(
            trial=labeller.trial_id, fingerprint=fingerprint,
            input_hash__in=keys[start:start + BATCH]).values_list("input_hash", flat=True))
    now = timezone.now()
    new = [Labelling(trial_id=labeller.trial_id, labeller=labeller, fingerprint=fingerprint,
                     input_hash=key, text=text, queued_at=now)
           for key, text in wanted.items() if key not in have]
    for start in range(0, len(new), BATCH):
        batch = new[start:start + BATCH]
        if labeller.kind == Labeller.Kind.RULES:
            for row in batch:
                _label_by_rules(row, labeller.uncertain_policy, now)
        Labelling.objects.bulk_create(batch, ignore_conflicts=True)
        if progress:
            progress(start + len(batch), len(new))
    if labeller.kind == Labeller.Kind.RULES or not new:
        return new
    # ignore_conflicts leaves no primary keys: read back the queued rows made for these texts
    made = [row.input_hash for row in new]
    return [row for start in range(0, len(made), BATCH) for row in Labelling.objects.filter(
        trial=labeller.trial_id, fingerprint=fingerprint, status=ChatJob.Status.QUEUED,
        input_hash__in=made[start:start + BATCH], sent_at__isnull=True)]


def _label_by_rules(row: Labelling, policy: str, now: datetime) -> None:
    found = rules.mentions(row.text)
    row.labels = rules.labels_of(found, policy)
    row.uncertain = sorted({m.finding for m in found if m.status == "uncertain"})
    row.status, row.attempts = ChatJob.Status.DONE, 1
    row.started_at = row.finished_at = now
    row.model_reported = f"rules {rules.RULES_VERSION}"


def judge(tool: Judge, pairs: Iterable[tuple[str, str]]) -> list[Judgement]:
    """The judgements of (reference, candidate) pairs by ``tool``, queued where missing."""
    wanted = {text_hash(ref, cand): (ref, cand) for ref, cand in pairs
              if ref.strip() and cand.strip()}
    fingerprint = tool.fingerprint
    have = set(Judgement.objects.filter(trial=tool.trial_id, fingerprint=fingerprint,
                                        input_hash__in=list(wanted))
               .values_list("input_hash", flat=True))
    now = timezone.now()
    new = [Judgement(trial_id=tool.trial_id, judge=tool, fingerprint=fingerprint,
                     input_hash=key, reference=ref, candidate=cand, queued_at=now)
           for key, (ref, cand) in wanted.items() if key not in have]
    Judgement.objects.bulk_create(new, ignore_conflicts=True)
    return list(Judgement.objects.filter(
        trial=tool.trial_id, fingerprint=fingerprint, status=ChatJob.Status.QUEUED,
        input_hash__in=[row.input_hash for row in new], sent_at__isnull=True))


def labels_of(labeller: Labeller, texts: Sequence[str]) -> dict[str, Labelling]:
    """Done labellings by text hash for the labeller's current configuration."""
    keys = list({text_hash(text) for text in texts})
    found: dict[str, Labelling] = {}
    for start in range(0, len(keys), BATCH):
        for row in Labelling.objects.filter(
                trial=labeller.trial_id, fingerprint=labeller.fingerprint,
                status=ChatJob.Status.DONE, input_hash__in=keys[start:start + BATCH]).only(
                "input_hash", "labels", "uncertain"):
            found[row.input_hash] = row
    return found


def requeue_failed(tool: Labeller | Judge, *, by=None) -> list[ChatJob]:
    """Put the tool's failed rows (current configuration) back in the queue (audited)."""
    model = Labelling if isinstance(tool, Labeller) else Judgement
    with transaction.atomic():
        failed = model.objects.select_for_update().filter(
            trial=tool.trial_id, fingerprint=tool.fingerprint, status=ChatJob.Status.FAILED)
        pks = list(failed.values_list("pk", flat=True))
        model.objects.filter(pk__in=pks).update(
            status=ChatJob.Status.QUEUED, attempts=0, sent_at=None, queued_at=timezone.now())
        if pks:
            audit.record(action=f"{model._meta.model_name}.retried", obj=tool, actor=by,
                         trial=tool.trial, after={"rows": len(pks)})
    return list(model.objects.filter(pk__in=pks))


def lost(*, now: datetime | None = None) -> list[ChatJob]:
    """Rows the periodic sweep sends again: never sent, sent long ago and not started, or
    running with an expired lease (the worker died)."""
    now = now or timezone.now()
    found: list[ChatJob] = []
    for model in (Labelling, Judgement):
        expired = model.objects.filter(status=ChatJob.Status.RUNNING, lease_until__lt=now)
        for job in expired:
            if model.objects.filter(pk=job.pk, claim=job.claim, lease_until__lt=now).update(
                    status=ChatJob.Status.QUEUED, claim="", lease_until=None, sent_at=None,
                    error="Taken over: its run stopped answering."):
                job.status = ChatJob.Status.QUEUED
                found.append(job)
        found += model.objects.filter(
            Q(status=ChatJob.Status.QUEUED)
            & (Q(sent_at__isnull=True) | Q(sent_at__lt=now - STALE))).exclude(
            pk__in=[job.pk for job in found if isinstance(job, model)])
    return found
