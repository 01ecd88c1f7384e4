"""``manage.py label_reports --trial SLUG [--labeller NAME] [--retry-failed] [--wait]``.

Labels every report text the trial's metrics compare (retrospective campaigns' reports, the
prospective drafts, readings and final reports) with a labeller: the 14 findings as 0/1. A
text already labelled by the labeller's configuration is skipped (no second model call). The
rule-based labeller labels here and now; an LLM labeller's texts go to the worker (without
REDIS_URL, here, one after another) and ``--wait`` follows them to the end.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from drafting.tasks import in_process
from metrics import jobs, sources, tasks
from metrics.models import ChatJob, Labeller, Labelling
from trial.management.base import ServiceCommand, find_trial, find_user
from trial.management.progress import draw

POLL_S = 0.5


class Command(ServiceCommand):
    help = ("Label the trial's report texts (14 findings as 0/1) with a labeller; texts already "
            "labelled by its configuration are skipped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--labeller", help="Labeller name (default: the rule-based one, "
                                               "made if the trial has none).")
        parser.add_argument("--retry-failed", action="store_true",
                            help="Put this labeller's failed texts back in the queue first.")
        parser.add_argument("--by", help="Username recorded in the audit log for "
                                         "--retry-failed.")
        parser.add_argument("--wait", action="store_true",
                            help="Wait until every text is labelled or failed (or the timeout); "
                                 "exit non-zero if any failed or did not finish.")
        parser.add_argument("--timeout", type=float, default=3600.0,
                            help="With --wait: seconds to wait at most (default 3600).")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        labeller = self._labeller(trial, options.get("labeller"))
        self.stdout.write(f"Labeller: {labeller.description} (fingerprint "
                          f"{labeller.fingerprint}).")
        texts = [text for comparison in sources.comparisons(trial)
                 for text in comparison.texts()]
        if not texts:
            raise CommandError(f"Trial {trial.slug!r} has no reports to label yet (no "
                               "retrospective campaign reports, drafts, readings or final "
                               "reports).")
        retried = []
        if options["retry_failed"]:
            retried = jobs.requeue_failed(labeller, by=find_user(options.get("by")))
        new = jobs.label(labeller, texts, progress=lambda done, total: draw(
            self.stderr, done, total, "labelled" if labeller.kind == Labeller.Kind.RULES
            else "queued"))
        if new:
            self.stderr.write("")
        mine = Labelling.objects.filter(trial=trial, fingerprint=labeller.fingerprint)
        if labeller.kind == Labeller.Kind.LLM:
            unsent = list(mine.filter(status=ChatJob.Status.QUEUED, sent_at__isnull=True)
                          .exclude(pk__in=[row.pk for row in new]))
            if in_process():
                self.stdout.write("No REDIS_URL: each text is labelled here, as it is sent.")
            work = [*new, *retried, *unsent]
            for done, row in enumerate(work, start=1):
                tasks.send(row)
                draw(self.stderr, done, len(work), "sent")
            if work:
                self.stderr.write("")
        unique = len(jobs.distinct(texts))
        self.stdout.write(f"{unique} distinct texts: {len(new)} new, "
                          f"{unique - len(new)} already labelled or queued by this "
                          f"configuration" + (f", {len(retried)} failed re-queued."
                                              if retried else "."))
        timed_out = False
        if options["wait"] and labeller.kind == Labeller.Kind.LLM:
            timed_out = not self._wait(mine, options["timeout"])
        counts = {status: mine.filter(status=status).count() for status in ChatJob.Status}
        self.stdout.write(f"Summary: {counts['done']} done, {counts['failed']} failed, "
                          f"{counts['queued'] + counts['running']} queued or running.")
        failed = list(mine.filter(status=ChatJob.Status.FAILED).order_by("pk")[:20])
        if failed:
            self.stdout.write("Failed (first 20; re-queue with --retry-failed):")
            for row in failed:
                self.stdout.write(f"  {row.input_hash[:10]}: {row.error}")
        if options["wait"] and (counts["failed"] or timed_out):
            raise CommandError(f"Labels not all done: {counts['failed']} failed"
                               + (", some unfinished at the timeout" if timed_out else "") + ".")

    def _labeller(self, trial, name: str | None) -> Labeller:
        if not name:
            return jobs.rules_labeller(trial)
        labeller = Labeller.objects.filter(trial=trial, name=name).first()
        if labeller is None:
            known = ", ".join(Labeller.objects.filter(trial=trial).values_list("name", flat=True))
            raise CommandError(f"Trial {trial.slug!r} has no labeller {name!r}; known: "
                               f"{known or '(none: add one in the admin)'}.")
        return labeller

    def _wait(self, mine, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        total = mine.count()
        while True:
            finished = mine.filter(status__in=[ChatJob.Status.DONE, ChatJob.Status.FAILED]).count()
            draw(self.stderr, finished, total, "finished")
            if finished == total or time.monotonic() >= deadline:
                self.stderr.write("")
                return finished == total
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

