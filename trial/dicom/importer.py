"""Import DICOM files into a trial: validate, group by study, de-identify, store, audit.

Each file is imported in its own transaction (bytes written, then the row; on failure the
bytes are removed), so a bad file never leaves a half-imported case and a crash mid-import
loses at most the file in hand. The trial row is locked per file: case numbering and the
duplicate check stay correct when two imports run at once.

Pixels are decoded once, here, within the limits of ``limits`` (a decompression bomb is refused
from its header), and the viewer's files are made from them with the image: a web request
never decodes. Higher apps make theirs from the same pixels (``render.pixels_decoded``: the AI
model's PNG), so a draft never decodes either. Zip members are extracted one at a time. A job
that stops for any reason (an error, an interrupt) is marked failed, never left running, and
its scratch files go.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from pydicom.dataset import FileDataset

from ..audit import record
from ..lifecycle import check_writable
from ..models import Case, Image, ImportJob, Site, Trial
from ..signals import before_deidentify
from .deid import deidentify, patient_age, patient_sex, remap_uid, salted_hash, to_bytes
from .history import FIELDS, HistoryTable, load_history
from .render import derived_dir, first_number, pixels_decoded
from .sources import SourceFile, collect, extracted
from .validate import DicomRejected, ValidDicom, validate_file
from .viewer_pixels import prepare

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
SYNTHETIC_MANUFACTURER = "SYNTHETIC"
REPORT_SAVE_EVERY = 20


def import_path(
    path: Path | str,
    *,
    trial: Trial,
    site: Site,
    by=None,
    history_csv: Path | str | None = None,
    job: ImportJob | None = None,
    progress: Progress | None = None,
) -> ImportJob:
    """Import a file, folder (recursive) or zip; returns the job with counters and report.

    Raises ``FileNotFoundError`` for a missing path and ``HistoryCsvError`` for a bad CSV
    (the job is then marked failed); problems with single files only go into the report.
    """
    if site.trial_id != trial.pk:
        raise ValueError(f"Site {site.code} belongs to another trial than {trial.slug}.")
    check_writable(trial, "Images")  # a locked trial takes no new case
    actor = by if getattr(by, "is_authenticated", False) else None
    if job is None:
        job = ImportJob.objects.create(trial=trial, site=site, created_by=actor,
                                         source=str(path)[:500])
    _start(job)
    try:
        history = load_history(history_csv) if history_csv else None
        with tempfile.TemporaryDirectory(prefix="cxr-import-") as tmp, \
                collect(Path(path), Path(tmp)) as files:
            job.total = len(files)
            job.save(update_fields=["total"])
            if progress:
                progress(0, job.total)
            for source in files:
                with extracted(source, Path(tmp)) as ready:
                    entry = import_file(ready, trial=trial, site=site, by=actor, job=job,
                                        history=history)
                _count(job, entry)
                if progress:
                    progress(job.processed, job.total)
    except BaseException as exc:  # an interrupt too: a stopped job must not stay "running"
        _fail(job, exc)
        raise
    job.status = ImportJob.Status.DONE
    job.finished_at = timezone.now()
    job.save()
    return job


def _fail(job: ImportJob, exc: BaseException) -> None:
    job.status = ImportJob.Status.FAILED
    job.error = str(exc) or type(exc).__name__
    job.finished_at = timezone.now()
    job.save()


def _start(job: ImportJob) -> None:
    """(Re)start a job from zero; a re-run finds earlier files as duplicates."""
    job.status = ImportJob.Status.RUNNING
    job.total = job.processed = job.imported = job.duplicates = job.rejected = 0
    job.report = []
    job.error = ""
    job.finished_at = None
    job.save()


def _count(job: ImportJob, entry: dict) -> None:
    job.processed += 1
    field = {"imported": "imported", "duplicate": "duplicates", "rejected": "rejected"}
    setattr(job, field[entry["status"]], getattr(job, field[entry["status"]]) + 1)
    job.report.append(entry)
    fields = ["processed", "imported", "duplicates", "rejected"]
    if job.processed % REPORT_SAVE_EVERY == 0 or job.processed == job.total:
        fields.append("report")
    job.save(update_fields=fields)


def import_file(
    source: SourceFile,
    *,
    trial: Trial,
    site: Site,
    by=None,
    job: ImportJob | None = None,
    history: HistoryTable | None = None,
) -> dict:
    """Import one file; returns its report entry (``status`` imported/duplicate/rejected)."""
    entry = {"file": source.name, "status": "rejected", "case": "", "reason": ""}
    if source.rejected or source.path is None:
        return {**entry, "reason": source.rejected or "unreadable"}
    try:
        valid = validate_file(source.path, allowed_modalities=trial.allowed_modalities)
        status, case_id = _store(valid, trial=trial, site=site, by=by, job=job, history=history)
    except DicomRejected as exc:
        return {**entry, "reason": exc.reason}
    except Exception as exc:  # a bug or an outage must not stop the other files
        logger.exception("Import of %s failed", source.name)
        return {**entry, "reason": f"import failed: {exc}"}
    reason = "already imported (same SOP Instance UID)" if status == "duplicate" else ""
    return {**entry, "status": status, "case": case_id, "reason": reason}


def _store(valid: ValidDicom, *, trial: Trial, site: Site, by, job: ImportJob | None,
           history: HistoryTable | None) -> tuple[str, str]:
    ds = valid.ds
    salt = trial.deid_salt
    source_key = salted_hash(salt, str(ds.SOPInstanceUID))
    study_key = salted_hash(salt, str(ds.StudyInstanceUID))
    undo: list[Callable[[], object]] = []  # files written, removed if the row is not committed
    try:
        with transaction.atomic():
            status = Trial.objects.select_for_update().filter(pk=trial.pk).values_list(
                "status", flat=True).get()
            if status == Trial.Status.LOCKED:  # locked while a long import or pull ran
                raise DicomRejected("the trial is locked: it takes no new image")
            existing = Image.objects.filter(source_key=source_key).select_related("case").first()
            if existing is None:
                row = history.find(ds) if history else None
                case = _case_for(ds, study_key=study_key, trial=trial, site=site, by=by, row=row)
                age = patient_age(ds)
                before_deidentify.send(sender=Case, case=case, ds=ds, site=site)
                deidentify(ds, salt=salt, case_id=case.case_id, age=age)
                data = to_bytes(ds)
                image = _image(ds, data, case=case, source_key=source_key, job=job)
                image.file.save(f"{ds.SOPInstanceUID}.dcm", ContentFile(data), save=False)
                storage, name = image.file.storage, image.file.name
                undo.append(lambda: storage.delete(name))
                folder = derived_dir(image)
                if not folder.exists():
                    undo.append(lambda: shutil.rmtree(folder, ignore_errors=True))
                prepare(image, ds, valid.pixels)  # the viewer's files, from the decoded pixels
                _derivatives(image, ds, valid)  # others' (the model's PNG), from the same
                image.save()
                record(action="image.imported", obj=image, actor=by, trial=trial, after={
                    "case": case.case_id, "sop_uid": image.sop_uid, "sha256": image.sha256,
                    "synthetic": image.synthetic, "import_job": job.pk if job else None,
                })
    except BaseException:
        for step in reversed(undo):
            step()
        raise
    if existing is not None:
        _prepare_earlier(existing)
        return "duplicate", existing.case.case_id
    return "imported", case.case_id


def _derivatives(image: Image, ds: FileDataset, valid: ValidDicom) -> None:
    """Other apps' files made from the decoded pixels (``render.pixels_decoded``: the AI
    model's PNG), so no worker decodes the image again; a failure is only logged."""
    for receiver, result in pixels_decoded.send_robust(sender=Image, image=image, ds=ds,
                                                       pixels=valid.pixels):
        if isinstance(result, Exception):
            logger.warning("Import-time files of image %s not made by %s: %s", image.sop_uid,
                           getattr(receiver, "__qualname__", receiver), result,
                           exc_info=result)


def _prepare_earlier(image: Image) -> None:
    """Importing a file again makes the viewer's files of its image if it has none (imported
    before they were made at import, or deleted); over the limits, it stays unviewable."""
    try:
        prepare(image)
    except DicomRejected as exc:
        logger.warning("Viewer files of image %s not made: %s", image.pk, exc.reason)
    except Exception:  # the duplicate is still reported; the viewer refuses the image
        logger.exception("Viewer files of image %s not made", image.pk)


def _case_for(ds: FileDataset, *, study_key: str, trial: Trial, site: Site, by,
              row: dict[str, str] | None) -> Case:
    """The study's case, created (status screened, pseudonymous id) on its first image."""
    case = Case.objects.filter(trial=trial, study_key=study_key).first()
    if case is not None:
        blanks = [f for f in FIELDS if row and row[f] and not getattr(case, f)]
        for f in blanks:
            setattr(case, f, row[f])
        if blanks:
            case.save(update_fields=blanks)
            record(action="case.history_attached", obj=case, actor=by, trial=trial,
                   before={f: "" for f in blanks}, after={f: row[f] for f in blanks})
        return case
    case = Case.objects.create(
        trial=trial,
        site=site,
        case_id=_next_case_id(trial, site),
        age=patient_age(ds),
        sex=patient_sex(ds),
        status=Case.Status.SCREENED,
        study_key=study_key,
        study_uid=remap_uid(trial.deid_salt, str(ds.StudyInstanceUID)),
        **(row or {}),
    )
    record(action="case.imported", obj=case, actor=by, trial=trial, after={
        "case_id": case.case_id, "site": site.code, "age": case.age, "sex": case.sex,
        "study_uid": case.study_uid, "has_history": case.has_history,
    })
    return case


def _next_case_id(trial: Trial, site: Site) -> str:
    """``<site code>-<n:04d>``, the first free number at that site (the trial row is locked)."""
    prefix = f"{site.code}-"
    taken = set(
        Case.objects.filter(trial=trial, case_id__startswith=prefix)
        .values_list("case_id", flat=True)
    )
    n = len(taken) + 1
    while f"{prefix}{n:04d}" in taken:
        n += 1
    return f"{prefix}{n:04d}"


def _image(ds: FileDataset, data: bytes, *, case: Case, source_key: str,
           job: ImportJob | None) -> Image:
    manufacturer = str(ds.get("Manufacturer", "") or "").strip().upper()
    return Image(
        case=case,
        source_key=source_key,
        sop_uid=str(ds.SOPInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        modality=str(ds.Modality).upper(),
        view_position=str(ds.get("ViewPosition", "") or "")[:16],
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        bits_stored=int(ds.get("BitsStored") or ds.BitsAllocated),
        photometric=str(ds.PhotometricInterpretation),
        transfer_syntax=str(ds.file_meta.TransferSyntaxUID),
        window_center=first_number(ds.get("WindowCenter")),
        window_width=first_number(ds.get("WindowWidth")),
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        synthetic=manufacturer == SYNTHETIC_MANUFACTURER,
        import_job=job,
    )
