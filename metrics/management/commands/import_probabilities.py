"""``manage.py import_probabilities --trial SLUG FILE``.

Imports a source's per-finding probabilities (``case_id,source`` then any of the 14 findings,
each in [0, 1] or empty) for ROC curves and AUC against the gold standard: the whole file or
nothing, every problem with its line. A row for a case and source already imported replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from metrics.imports import import_probabilities
from trial.management.base import ServiceCommand, find_trial, find_user


class Command(ServiceCommand):
    help = "Import per-finding probabilities of a source (a model) from CSV, for ROC and AUC."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file: case_id, source and finding columns.")
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--by", help="Username recorded in the audit log.")

    def handle(self, *args: object, **options: Any) -> None:
        trial = find_trial(options["trial"])
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        rows = import_probabilities(trial, path.read_bytes(), by=find_user(options.get("by")))
        self.stdout.write(f"Imported {rows} rows of probabilities.")
