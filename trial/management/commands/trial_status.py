"""``manage.py trial_status --trial SLUG [--to STATUS] [--by USERNAME] [--password-stdin]``:
show or move the trial's status along its one-way state machine (``trial.lifecycle``).

Locking is an electronic signature of ``--by``: their password is asked for at a terminal, or
read from standard input with ``--password-stdin`` (never from the command line).
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from trial import lifecycle
from trial.management.base import ServiceCommand, acting_user, find_trial
from trial.models import Trial


class Command(ServiceCommand):
    help = ("Show a trial's status, or move it forward (set-up, enrolling, reading, rating, "
            "locked). Locking is final and reveals the randomisation list and the unblinded keys.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--to", choices=Trial.Status.values, help="The new status.")
        parser.add_argument("--by", help="Username recorded in the audit log (and who signs a "
                                             "lock).")
        parser.add_argument("--password-stdin", action="store_true",
                            help="Read the signer's password from standard input (to lock).")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        if options["to"]:
            by = acting_user(trial, options["by"])
            password = None
            if options["to"] == Trial.Status.LOCKED and trial.status != Trial.Status.LOCKED:
                password = self._password(by, options["password_stdin"])
            trial = lifecycle.set_status(trial, options["to"], by=by, password=password)
        labels = dict(Trial.Status.choices)
        after = ", ".join(labels[s] for s in lifecycle.next_statuses(trial.status)) or "none"
        self.stdout.write(f"{trial.slug}: {labels[trial.status]} (next: {after})")

    def _password(self, by: Any, from_stdin: bool) -> str:
        """The signer's password: from standard input, or asked for at a terminal."""
        if from_stdin:
            return sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty():
            raise CommandError("Locking is signed with the password of --by: give it on "
                               "standard input with --password-stdin.")
        return getpass.getpass(f"Password of {by.get_username()} (signs the lock): ")
