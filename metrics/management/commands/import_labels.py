"""``manage.py import_labels --trial SLUG --name NAME FILE [--gold] [--description TEXT]``.

Imports a label set (``case_id`` then the 14 findings as 0/1) from CSV: the whole file or
nothing, every problem with its line. ``--gold`` makes it the trial's gold standard (kappa,
AUC, labeller validation and the complex-case subgroup use it). ``--from-ticks`` makes a label
set from the findings the readers ticked instead of a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from metrics.imports import import_labels, label_set_from_ticks
from trial.management.base import ServiceCommand, find_trial, find_user


class Command(ServiceCommand):
    help = "Import a label set of the 14 findings per case from CSV (or from the readers' ticks)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="CSV file: case_id and the 14 findings.")
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--name", required=True, help="Name of the label set.")
        parser.add_argument("--description", default="", help="Who labelled, how, when.")
        parser.add_argument("--gold", action="store_true",
                            help="Make it the trial's gold-standard label set.")
        parser.add_argument("--from-ticks", action="store_true",
                            help="Make the set from the readers' ticked findings (no file).")
        parser.add_argument("--by", help="Username recorded in the audit log.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        by = find_user(options.get("by"))
        if options["from_ticks"]:
            if options["file"]:
                raise CommandError("Give a file or --from-ticks, not both.")
            label_set = label_set_from_ticks(trial, name=options["name"], by=by)
        else:
            if not options["file"]:
                raise CommandError("Give the CSV file (or --from-ticks).")
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"No file {path}.")
            label_set = import_labels(trial, path.read_bytes(), name=options["name"],
                                      description=options["description"],
                                      gold=options["gold"], by=by)
        gold = " (gold standard)" if label_set.gold else ""
        self.stdout.write(f"Label set {label_set.name!r}{gold}: {label_set.cases.count()} cases.")
