"""``manage.py analyze --trial SLUG --out DIR``: the trial report as files, for the record."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.report import build_report
from trial import audit
from trial.management.progress import draw
from trial.models import Trial


class Command(BaseCommand):
    help = ("Write the trial's analysis into DIR: summary.json, report.html, report.pdf, "
            "tables/*.csv, figures/*.png and data/ (tidy CSVs, data dictionary, XLSX).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", required=True, help="Trial slug.")
        parser.add_argument("--out", required=True, help="Output directory (created).")
        parser.add_argument("--no-figures", action="store_true", help="Skip the PNG figures.")
        parser.add_argument("--no-pdf", action="store_true", help="Skip report.pdf.")
        parser.add_argument("--no-mixed", action="store_true",
                            help="Skip the mixed model (the slow part on large trials).")

    def handle(self, *args, **options) -> None:
        try:
            trial = Trial.objects.get(slug=options["trial"])
        except Trial.DoesNotExist:
            raise CommandError(f"No trial with slug {options['trial']!r}.") from None
        # Unblinded results by arm: recorded like every view of the analysis (no user here).
        audit.record(action="analysis.viewed", obj=trial,
                     after={"what": "analyze command", "out": str(options["out"])})
        files = build_report(
            trial, options["out"], figures=not options["no_figures"],
            pdf=not options["no_pdf"], mixed=not options["no_mixed"],
            progress=lambda done, total, what: draw(self.stderr, done, total, what))
        self.stderr.write("")
        self.stdout.write(f"Analysis of {trial.slug} written to {files.out_dir}:")
        for path in files.all():
            self.stdout.write(f"  {path}")
