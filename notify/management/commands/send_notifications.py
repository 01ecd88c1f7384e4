"""``manage.py send_notifications [--dry-run]``: send the summary e-mails that are due now
(``notify.send.send_due``, as the periodic task does) and print who got what; with
``--dry-run``, print who would get what and send nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from notify.send import Planned, send_due
from trial.management.base import ServiceCommand


def describe(item: Planned) -> list[str]:
    """What one e-mail holds, one line per part (for the operator: trials named)."""
    lines = [f"{item.user.get_username()} <{item.address}>"]
    for section in item.sections:
        where = f"{section.trial.slug}, {section.kind}"
        for entry in section.entries:
            lines.append(f"    [{where}] {entry.text}")
    return lines


class Command(ServiceCommand):
    help = ("Send the notification e-mails that are due (one summary per person, at most once "
            "per trial interval, only while work is waiting) and print who got what.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true",
                            help="Print who would get what; send and record nothing.")

    def handle(self, *args: object, **options: Any) -> None:
        out = self.stdout.write
        summary = send_due(dry_run=options["dry_run"])
        if not summary.planned and not summary.no_address:
            out("Nothing is due.")
            return
        if summary.dry_run:
            out(f"Dry run: {len(summary.planned)} e-mail(s) would be sent, none was.")
            for item in summary.planned:
                for line in describe(item):
                    out(f"  {line}")
        else:
            out(f"Sent {len(summary.sent)} e-mail(s).")
            for item in summary.sent:
                for line in describe(item):
                    out(f"  {line}")
            for item, error in summary.failed:
                self.stderr.write(f"  FAILED {item.user.get_username()} <{item.address}>: "
                                  f"{error} (tried again at the next run)")
            if summary.skipped:
                out(f"Skipped {len(summary.skipped)} (mailed by another run meanwhile, or "
                    "turned off).")
        for username in summary.no_address:
            out(f"  No e-mail address, not sent: {username}")
