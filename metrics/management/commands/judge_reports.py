"""``manage.py judge_reports --trial SLUG --judge NAME [--retry-failed] [--wait]``.

Asks the trial's LLM error judge to count each report's errors against its reference (the
published or the final report), by type and clinical significance. A report already judged by
the judge's configuration is skipped. Results appear in the next ``report_metrics`` run, next
to the experts' own counts where a campaign asked for them.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser

from metrics import jobs, judging, tasks
from metrics.models import ChatJob, Judge, Judgement
from trial.management.base import ServiceCommand, find_trial, find_user
from trial.management.progress import draw

POLL_S = 0.5


class Command(ServiceCommand):
    help = "Count each report's errors against its reference with the trial's LLM judge."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--judge", required=True, help="Judge name (added in the admin).")
        parser.add_argument("--retry-failed", action="store_true")
        parser.add_argument("--by", help="Username recorded in the audit log.")
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        judge = Judge.objects.filter(trial=trial, name=options["judge"]).first()
        if judge is None:
            raise CommandError(f"Trial {trial.slug!r} has no judge {options['judge']!r}.")
        retried = (jobs.requeue_failed(judge, by=find_user(options.get("by")))
                   if options["retry_failed"] else [])
        new = judging.queue(trial, judge)
        work = [*new, *retried]
        for done, row in enumerate(work, start=1):
            tasks.send(row)
            draw(self.stderr, done, len(work), "sent")
        if work:
            self.stderr.write("")
        mine = Judgement.objects.filter(trial=trial, fingerprint=judge.fingerprint)
        if options["wait"]:
            deadline = time.monotonic() + options["timeout"]
            total = mine.count()
            while True:
                finished = mine.filter(status__in=[ChatJob.Status.DONE,
                                                   ChatJob.Status.FAILED]).count()
                draw(self.stderr, finished, total, "finished")
                if finished == total or time.monotonic() >= deadline:
                    self.stderr.write("")
                    break
                time.sleep(POLL_S)
        counts = {status: mine.filter(status=status).count() for status in ChatJob.Status}
        self.stdout.write(f"{len(new)} reports queued. Summary: {counts['done']} done, "
                          f"{counts['failed']} failed, "
                          f"{counts['queued'] + counts['running']} queued or running.")
        for row in mine.filter(status=ChatJob.Status.FAILED).order_by("pk")[:20]:
            self.stdout.write(f"  failed {row.input_hash[:10]}: {row.error}")
        if options["wait"] and counts["failed"]:
            raise CommandError(f"{counts['failed']} judgements failed.")
