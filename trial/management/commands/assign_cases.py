"""``manage.py assign_cases --trial SLUG [--seed N] [--by USERNAME]``: assign enrolled cases."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from trial.assignment import assign_cases, workload
from trial.management.base import ServiceCommand, acting_user, find_trial


class Command(ServiceCommand):
    help = "Assign each enrolled case to one reader of each arm; print the readers' workloads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--seed", type=int, help="Seed for reproducible assignment.")
        parser.add_argument("--by", help="Username recorded as the one who did it.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        by = acting_user(trial, options["by"])
        rows = assign_cases(trial, by=by, seed=options["seed"])
        if not rows:
            raise CommandError(f"nothing to assign: no enrolled case of {trial.slug!r} is "
                               "waiting for a reader")
        new: dict[str, int] = {}
        for row in rows:
            name = row.reader.user.get_username()
            new[name] = new.get(name, 0) + 1
        self.stdout.write(f"{'reader':<16} {'site':<8} {'arm':<28} {'new':>5} {'total':>6}")
        for line in workload(trial):
            self.stdout.write(f"{line['reader']:<16} {line['site']:<8} {line['arm_label']:<28} "
                              f"{new.get(line['reader'], 0):>5} {line['cases']:>6}")
        self.stdout.write(f"Made {len(rows)} assignment(s) for "
                          f"{len({r.case_id for r in rows})} case(s).")
