"""``manage.py import_dicom PATH --trial SLUG --site CODE [--history CSV]``."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from trial.dicom.history import HistoryCsvError
from trial.dicom.importer import import_path
from trial.management.base import ServiceCommand
from trial.management.progress import draw
from trial.models import ImportJob, Site, Trial


class Command(ServiceCommand):
    help = (
        "Import DICOM images (a file, a folder searched recursively, or a zip) into a trial: "
        "validate, de-identify, group by study into cases, and report every file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="A DICOM file, a folder or a .zip")
        parser.add_argument("--trial", required=True, help="Trial slug")
        parser.add_argument("--site", required=True, help="Site code within the trial")
        parser.add_argument(
            "--history",
            help="CSV of clinical history: accession_number or patient_id, chief_complaint, "
                 "history, lab_results, prior_imaging",
        )

    def handle(self, *args, **options) -> None:
        trial = Trial.objects.filter(slug=options["trial"]).first()
        if trial is None:
            known = ", ".join(Trial.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown trial '{options['trial']}' (trials: {known}).")
        site = Site.objects.filter(trial=trial, code=options["site"]).first()
        if site is None:
            known = ", ".join(trial.sites.values_list("code", flat=True)) or "none"
            raise CommandError(
                f"Unknown site '{options['site']}' in trial {trial.slug} (sites: {known})."
            )
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"Path does not exist: {path}")
        history = options.get("history")
        if history and not Path(history).is_file():
            raise CommandError(f"History CSV does not exist: {history}")
        try:
            job = import_path(path, trial=trial, site=site, history_csv=history,
                              progress=self._progress)
        except HistoryCsvError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:  # the job is already marked failed, its scratch files gone
            self.stderr.write("")
            raise CommandError(
                "Interrupted: the import job is marked failed. Files imported so far are kept; "
                "run the command again to import the rest (they come back as duplicates)."
            ) from None
        self.stderr.write("")
        self._summary(job)

    def _progress(self, done: int, total: int) -> None:
        draw(self.stderr, done, total)

    def _summary(self, job: ImportJob) -> None:
        self.stdout.write(
            f"Import #{job.pk} into {job.trial.slug} (site {job.site.code}): "
            f"{job.imported} imported, {job.duplicates} duplicate, {job.rejected} rejected "
            f"({job.total} files)."
        )
        rejected = [e for e in job.report if e["status"] == "rejected"]
        if rejected:
            self.stdout.write("Rejected:")
            for entry in rejected:
                self.stdout.write(f"  {entry['file']}: {entry['reason']}")
