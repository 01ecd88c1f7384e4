"""``manage.py randomize_readers --trial SLUG [--list CSV] [--extend [STRATUM] --blocks N]
[--by USERNAME]``.

Makes the trial's randomisation list if it has none (from a seed the platform draws, or the
statistician's CSV), allocates every unallocated reader and prints the allocation table.
``--extend`` first appends blocks to one stratum of an existing list (a site added later, or
more readers than slots): ``--blocks N`` generated from a fresh seed the platform draws, or
the statistician's CSV extension with ``--list``. A list is extended only when asked, never
silently. Never prints a seed or a free slot's arm.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from django.core.management.base import CommandError, CommandParser

from trial.management.base import ServiceCommand, acting_user, find_trial
from trial.models import Membership, RandomizationList, Role, Trial
from trial.randomization import (
    MAX_EXTENSION_BLOCKS,
    ListExhausted,
    RandomizationError,
    allocate_all,
    allocation_table,
    extend_list,
    generate_list,
    import_extension,
    import_list,
)


@contextmanager
def csv_file(name: str) -> Iterator[tuple[IO[str], str]]:
    """The open CSV file (UTF-8, with or without a BOM) and its name."""
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"list file {str(path)!r} not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        yield fh, path.name


class Command(ServiceCommand):
    help = ("Generate or import the reader randomisation list if needed (or extend it for a "
            "stratum with --extend); allocate every reader.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--list", dest="csv", help="Statistician's CSV list to import "
                            "(without it the list is generated from a seed the platform draws; "
                            "nobody chooses it). With --extend: the CSV extension to append.")
        parser.add_argument(
            "--extend", nargs="?", const="", default=None, metavar="STRATUM",
            help="Append blocks to this stratum (a site code; nothing if the list is not "
                 "stratified) of the existing list, then allocate. Needs --blocks N or --list.")
        parser.add_argument(
            "--blocks", type=int, help=f"With --extend: the number of blocks (1.."
            f"{MAX_EXTENSION_BLOCKS}) of the trial's design, from a fresh seed the platform "
            "draws.")
        parser.add_argument("--by", help="Username recorded as the one who did it.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        extending = options["extend"] is not None
        if options["blocks"] is not None and not extending:
            raise CommandError("--blocks goes with --extend STRATUM (which stratum to extend)")
        if extending and (options["blocks"] is None) == (options["csv"] is None):
            raise CommandError("--extend needs either --blocks N (generated blocks) or --list "
                               "CSV (the statistician's extension), not both")
        unallocated = Membership.objects.filter(
            trial=trial, role=Role.READER, allocation_slot__isnull=True
        ).exists()
        if not unallocated and not extending:
            raise CommandError("nothing to do: every reader of "
                               f"{trial.slug!r} is allocated (or it has no readers)")
        by = acting_user(trial, options["by"])
        has_list = RandomizationList.objects.filter(trial=trial).exists()
        if extending:
            self._extend(trial, by, options)
        elif has_list and options["csv"]:
            raise CommandError(f"trial {trial.slug!r} already has its randomisation list; "
                               "drop --list to allocate from it, or extend it for a stratum "
                               "with --extend STRATUM --list CSV")
        elif not has_list:
            self._make_list(trial, by, options)
        if not unallocated:
            self.stdout.write("No reader to allocate.")
            return
        try:
            done = allocate_all(trial, by=by)
        except RandomizationError as exc:  # exhausted, or a reader without a site
            self._print_table(trial, len(getattr(exc, "allocated", [])))
            prefix = "list exhausted: " if isinstance(exc, ListExhausted) else ""
            raise CommandError(f"{prefix}{exc}") from exc
        self._print_table(trial, len(done))

    def _make_list(self, trial: Trial, by: Any, options: dict[str, Any]) -> None:
        if options["csv"]:
            with csv_file(options["csv"]) as (fh, name):
                rlist = import_list(trial, fh, by=by, source_name=name)
        else:
            rlist = generate_list(trial, by=by)
        self.stdout.write(f"Randomisation list {rlist.get_method_display().lower()}: "
                          f"{rlist.slots.count()} slots; commitment {rlist.commitment}")

    def _extend(self, trial: Trial, by: Any, options: dict[str, Any]) -> None:
        stratum = options["extend"]
        if options["csv"]:
            with csv_file(options["csv"]) as (fh, name):
                extension = import_extension(trial, fh, stratum=stratum, by=by,
                                             source_name=name)
        else:
            extension = extend_list(trial, stratum=stratum, blocks=options["blocks"], by=by)
        where = f"stratum {extension.stratum!r}" if extension.stratum else "the list"
        self.stdout.write(
            f"Randomisation list extended for {where} (extension {extension.number}, "
            f"{extension.get_method_display().lower()}): {extension.blocks} block(s), "
            f"{extension.slot_count} slots; commitment {extension.commitment}")

    def _print_table(self, trial: Trial, allocated_now: int) -> None:
        rows = allocation_table(trial)
        self.stdout.write(f"{'reader':<16} {'site':<8} {'arm':<28} {'slot':<10} when")
        for row in rows:
            slot = f"{row['stratum']} #{row['position']}".strip()
            when = row["allocated_at"].strftime("%Y-%m-%d %H:%M:%S %Z")
            self.stdout.write(f"{row['reader']:<16} {row['site']:<8} {row['arm_label']:<28} "
                              f"{slot:<10} {when}")
        self.stdout.write(f"Allocated {allocated_now} reader(s) now; {len(rows)} in all.")

