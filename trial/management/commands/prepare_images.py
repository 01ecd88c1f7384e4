"""``manage.py prepare_images [--trial SLUG]``: make the viewer's files of every image that
lacks one (images imported before imports made them or their preview, or whose files were
deleted); a missing preview is made from the stored pixel file, decoding nothing.

Web requests never decode a DICOM file (a decompression bomb would run in the web process), so
an image without viewer files is refused until it is prepared: here, or by a worker. Decoding
stays within the import's limits (``DICOM_MAX_PIXELS``); an image over them is reported.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from trial.dicom.validate import DicomRejected
from trial.dicom.viewer_pixels import is_prepared, prepare
from trial.management.base import ServiceCommand, find_trial
from trial.management.progress import draw
from trial.models import Image


class Command(ServiceCommand):
    help = "Make the viewer's missing files (pixels, preview) of every image (after an upgrade)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--trial", help="Only this trial's images (slug).")

    def handle(self, *args: object, **options: Any) -> None:
        images = Image.objects.select_related("case__trial").order_by("pk")
        if options["trial"]:
            images = images.filter(case__trial=find_trial(options["trial"]))
        missing = [image for image in images if not is_prepared(image)]
        refused: list[str] = []
        for done, image in enumerate(missing, start=1):
            try:
                prepare(image)
            except (DicomRejected, OSError, ValueError) as exc:
                refused.append(f"  image {image.pk} of case {image.case.case_id}: {exc}")
            draw(self.stderr, done, len(missing), "prepared")
        if missing:
            self.stderr.write("")
        self.stdout.write(f"Prepared {len(missing) - len(refused)} image(s); "
                          f"{images.count() - len(missing)} already had their files.")
        if refused:
            self.stdout.write(f"{len(refused)} could not be prepared:")
            for line in refused:
                self.stdout.write(line)
