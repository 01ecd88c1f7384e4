"""``manage.py generate_drafts --trial SLUG [--retry-failed] [--by USER] [--wait] [--timeout S]``.

Queues the AI draft of every enrolled case that has none from the trial's active endpoint, and
sends queued drafts that were never handed to the queue. ``--retry-failed`` puts failed drafts
back in the queue; ``--wait`` follows the drafts until they finish. Without REDIS_URL each
draft is made in-process while it is queued, so the queueing bar moves one case at a time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser

from drafting import queue, tasks
from drafting.models import Draft, ModelEndpoint
from drafting.queries import active_endpoint, describe_endpoint
from trial.management.base import ServiceCommand, find_trial, find_user
from trial.management.progress import draw

POLL_S = 0.5
FINISHED = (Draft.Status.DONE, Draft.Status.FAILED)


def p95(values: list[int]) -> int:
    """The 95th percentile by nearest rank (a value that occurred)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Command(ServiceCommand):
    help = ("Queue the AI drafts a trial's enrolled cases lack (from its active model endpoint), "
            "optionally re-queue failed ones and wait for them, then summarise.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--retry-failed", action="store_true",
                            help="Also put failed drafts back in the queue.")
        parser.add_argument("--by", help="Username recorded in the audit log for --retry-failed.")
        parser.add_argument("--wait", action="store_true",
                            help="Wait until the drafts are done or failed (or the timeout); "
                                 "exit non-zero if any failed or did not finish.")
        parser.add_argument("--timeout", type=float, default=600.0,
                            help="With --wait: seconds to wait at most (default 600).")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        by = find_user(options.get("by"))
        endpoint = active_endpoint(trial)
        if endpoint is None:
            raise CommandError(f"Trial {trial.slug!r} has no active model endpoint: add one in "
                               "the admin or the API first.")
        for line in describe_endpoint(endpoint):
            self.stdout.write(line)
        if tasks.in_process():
            self.stdout.write("No REDIS_URL: each draft is made here, while it is queued.")

        mine = Draft.objects.filter(case__trial=trial, fingerprint=endpoint.fingerprint)
        outstanding = set(mine.filter(status__in=[Draft.Status.QUEUED, Draft.Status.RUNNING])
                          .values_list("pk", flat=True))
        unsent = list(mine.filter(status=Draft.Status.QUEUED, sent_at__isnull=True)
                      .select_related("case"))
        failed = list(mine.filter(status=Draft.Status.FAILED).select_related("case")
                      if options["retry_failed"] else [])
        new = queue.add_missing(trial, record=False) or []
        # Each step returns (draft pk, sent): sent is None for a failed draft that is not
        # failed any more when its turn comes (retried elsewhere meanwhile): left alone.
        work: list[tuple[str, Callable[[], tuple[int, bool | None]]]] = (
            [("new", lambda d=draft: self._new(d)) for draft in new]
            + [("unsent", lambda d=draft: (d.pk, tasks.send(d))) for draft in unsent]
            + [("retried", lambda d=draft: self._retry(d, by)) for draft in failed]
        )
        counts = {"new": 0, "unsent": 0, "retried": 0, "not sent": 0, "not failed": 0}
        tracked = set(outstanding)
        for done, (kind, step) in enumerate(work, start=1):
            pk, sent = step()
            if sent is None:
                counts["not failed"] += 1
            else:
                tracked.add(pk)
                counts[kind] += 1
                counts["not sent"] += not sent
            draw(self.stderr, done, len(work), "queued")
        if work:
            self.stderr.write("")
        queued = len(work) - counts["not failed"]
        self.stdout.write(
            f"Queued {queued} drafts: {counts['new']} new, {counts['unsent']} never sent, "
            f"{counts['retried']} failed re-queued."
        )
        if counts["not failed"]:
            self.stdout.write(f"{counts['not failed']} failed drafts left alone: not failed "
                              "any more (retried elsewhere meanwhile) or no longer of the "
                              "active endpoint.")
        if counts["not sent"]:
            self.stdout.write(f"{counts['not sent']} could not be handed to the queue (broker "
                              "down?): they stay queued and the periodic sweep sends them.")

        timed_out = False
        if options["wait"] and tracked:
            timed_out = not self._wait(tracked, options["timeout"])
        self._summary(endpoint, mine, tracked, waited=options["wait"])
        if options["wait"]:
            failures = mine.filter(pk__in=tracked, status=Draft.Status.FAILED).count()
            unfinished = mine.filter(pk__in=tracked).exclude(status__in=FINISHED).count()
            if failures or timed_out:
                problems = [f"{failures} failed"] if failures else []
                if timed_out:
                    problems.append(f"{unfinished} unfinished after {options['timeout']:g} s")
                raise CommandError("Drafts not all done: " + ", ".join(problems) + ".")

    def _new(self, draft: Draft) -> tuple[int, bool]:
        # Another process may have made it meanwhile: only a queued draft is sent.
        return draft.pk, tasks.send(draft) if draft.status == Draft.Status.QUEUED else True

    def _retry(self, draft: Draft, by: Any) -> tuple[int, bool | None]:
        """Re-queue a failed draft and send it; sent is None if it was not failed any more."""
        requeued = queue.requeue_failed(draft, by=by)
        return draft.pk, None if requeued is None else tasks.send(requeued)

    def _wait(self, tracked: set[int], timeout: float) -> bool:
        """Poll the database until every tracked draft is done or failed; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            finished = Draft.objects.filter(pk__in=tracked, status__in=FINISHED).count()
            draw(self.stderr, finished, len(tracked), "finished")
            if finished == len(tracked) or time.monotonic() >= deadline:
                self.stderr.write("")
                return finished == len(tracked)
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def _summary(self, endpoint: ModelEndpoint, mine, tracked: set[int], *, waited: bool) -> None:
        out = self.stdout.write
        drafts = list(mine.filter(pk__in=tracked).select_related("case").order_by("case__case_id"))
        done = [d for d in drafts if d.status == Draft.Status.DONE]
        failed = [d for d in drafts if d.status == Draft.Status.FAILED]
        pending = len(drafts) - len(done) - len(failed)
        warned = [d for d in done if d.warning]
        with_warning = f" ({len(warned)} with a warning)" if warned else ""
        out(f"Summary: {len(done)} done{with_warning}, {len(failed)} failed, {pending} still "
            "queued or running.")
        latencies = [d.model_latency_ms for d in done if d.model_latency_ms is not None]
        if latencies and endpoint.backend != ModelEndpoint.Backend.DEMO:
            out(f"Model latency: mean {sum(latencies) / len(latencies):.0f} ms, "
                f"p95 {p95(latencies)} ms ({len(latencies)} drafts).")
        if warned:  # done, but e.g. without an IMPRESSION: check the model and its prompt
            out("Done with a warning (check_model shows what the model answers):")
            for draft in warned:
                out(f"  {draft.case.case_id}: {draft.warning}")
        if failed:
            out("Failed:")
            for draft in failed:
                out(f"  {draft.case.case_id}: {draft.error}")
        if pending and not waited:
            out("Run again with --wait to follow them until they finish.")
        others = mine.filter(status=Draft.Status.FAILED).exclude(pk__in=tracked).count()
        if others:
            out(f"{others} earlier failed drafts of this endpoint: re-queue them with "
                "--retry-failed.")
        if endpoint.backend == ModelEndpoint.Backend.DEMO:
            out("These drafts come from the demo backend, not from a model.")
