"""``manage.py randomize_readers --trial SLUG [--list CSV] [--by USERNAME]``.

Makes the trial's randomisation list if it has none (from a seed the platform draws, or the
statistician's CSV), allocates every unallocated reader and prints the allocation table.
Never prints the seed or a free slot's arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from trial.management.base import ServiceCommand, acting_user, find_trial
from trial.models import Membership, RandomizationList, Role, Trial
from trial.randomization import (
    ListExhausted,
    RandomizationError,
    allocate_all,
    allocation_table,
    generate_list,
    import_list,
)


class Command(ServiceCommand):
    help = "Generate or import the reader randomisation list if needed; allocate every reader."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--list", dest="csv", help="Statistician's CSV list to import "
                            "(without it the list is generated from a seed the platform draws; "
                            "nobody chooses it).")
        parser.add_argument("--by", help="Username recorded as the one who did it.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        if not Membership.objects.filter(
            trial=trial, role=Role.READER, allocation_slot__isnull=True
        ).exists():
            raise CommandError("nothing to do: every reader of "
                               f"{trial.slug!r} is allocated (or it has no readers)")
        by = acting_user(trial, options["by"])
        has_list = RandomizationList.objects.filter(trial=trial).exists()
        if has_list and options["csv"]:
            raise CommandError(f"trial {trial.slug!r} already has its randomisation list; "
                               "drop --list to allocate from it")
        if not has_list:
            self._make_list(trial, by, options)
        try:
            done = allocate_all(trial, by=by)
        except RandomizationError as exc:  # exhausted, or a reader without a site
            self._print_table(trial, len(getattr(exc, "allocated", [])))
            prefix = "list exhausted: " if isinstance(exc, ListExhausted) else ""
            raise CommandError(f"{prefix}{exc}") from exc
        self._print_table(trial, len(done))

    def _make_list(self, trial: Trial, by: Any, options: dict[str, Any]) -> None:
        if options["csv"]:
            path = Path(options["csv"])
            if not path.is_file():
                raise CommandError(f"list file {str(path)!r} not found")
            with path.open(newline="", encoding="utf-8-sig") as fh:
                rlist = import_list(trial, fh, by=by, source_name=path.name)
        else:
            rlist = generate_list(trial, by=by)
        self.stdout.write(f"Randomisation list {rlist.get_method_display().lower()}: "
                          f"{rlist.slots.count()} slots; commitment {rlist.commitment}")

    def _print_table(self, trial: Trial, allocated_now: int) -> None:
        rows = allocation_table(trial)
        self.stdout.write(f"{'reader':<16} {'site':<8} {'arm':<28} {'slot':<10} when")
        for row in rows:
            slot = f"{row['stratum']} #{row['position']}".strip()
            when = row["allocated_at"].strftime("%Y-%m-%d %H:%M:%S %Z")
            self.stdout.write(f"{row['reader']:<16} {row['site']:<8} {row['arm_label']:<28} "
                              f"{slot:<10} {when}")
        self.stdout.write(f"Allocated {allocated_now} reader(s) now; {len(rows)} in all.")
