"""``manage.py trial_status --trial SLUG [--to STATUS] [--by USERNAME]``: show or move the
trial's status along its one-way state machine (``trial.lifecycle``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from trial import lifecycle
from trial.management.base import ServiceCommand, acting_user, find_trial
from trial.models import Trial


class Command(ServiceCommand):
    help = ("Show a trial's status, or move it forward (set-up, enrolling, reading, rating, "
            "locked). Locking is final and reveals the randomisation list and the unblinded keys.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--to", choices=Trial.Status.values, help="The new status.")
        parser.add_argument("--by", help="Username recorded in the audit log.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        if options["to"]:
            by = acting_user(trial, options["by"])
            trial = lifecycle.set_status(trial, options["to"], by=by)
        labels = dict(Trial.Status.choices)
        after = ", ".join(labels[s] for s in lifecycle.next_statuses(trial.status)) or "none"
        self.stdout.write(f"{trial.slug}: {labels[trial.status]} (next: {after})")
