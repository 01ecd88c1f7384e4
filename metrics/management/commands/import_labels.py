"""``manage.py import_labels --trial SLUG --name NAME FILE [--gold] [--description TEXT]``.

Imports a label set (``case_id`` then the 14 findings as 0/1) from CSV: the whole file or
nothing, every problem with its line. ``--gold`` makes it the trial's gold standard (kappa,
AUC, labeller validation and the complex-case subgroup use it). ``--from-ticks`` makes a label
set from the findings the readers ticked instead of a file; ``--from-reports --labeller NAME``
from the reference reports (signed final and published) as that labeller labelled them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from metrics import jobs
from metrics.imports import import_labels, label_set_from_reports, label_set_from_ticks
from metrics.models import Labeller
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
        parser.add_argument("--from-reports", action="store_true",
                            help="Make the set from the reference reports as --labeller "
                                 "labelled them (no file).")
        parser.add_argument("--labeller", help="With --from-reports: the labeller's name "
                                               "(default: the rule-based one).")
        parser.add_argument("--by", help="Username recorded in the audit log.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        by = find_user(options.get("by"))
        if options["from_ticks"] + options["from_reports"] + bool(options["file"]) != 1:
            raise CommandError("Give one of: a CSV file, --from-ticks, --from-reports.")
        if options["from_ticks"]:
            label_set = label_set_from_ticks(trial, name=options["name"], gold=options["gold"],
                                             by=by)
        elif options["from_reports"]:
            labeller = (Labeller.objects.filter(trial=trial, name=options["labeller"]).first()
                        if options["labeller"] else jobs.rules_labeller(trial))
            if labeller is None:
                raise CommandError(f"Trial {trial.slug!r} has no labeller "
                                   f"{options['labeller']!r}.")
            label_set = label_set_from_reports(trial, labeller, name=options["name"],
                                               gold=options["gold"], by=by)
        else:
            path = Path(options["file"])
            if not path.is_file():
                raise CommandError(f"No file {path}.")
            label_set = import_labels(trial, path.read_bytes(), name=options["name"],
                                      description=options["description"],
                                      gold=options["gold"], by=by)
        gold = " (gold standard)" if label_set.gold else ""
        self.stdout.write(f"Label set {label_set.name!r}{gold}: {label_set.cases.count()} cases.")
