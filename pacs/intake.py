"""Studies that arrive over the network go through the same import as files do.

The listener writes each received instance into a spool folder per site and study, atomically
(a temporary name, then a rename): an association that dies half-way leaves whole files and
nothing partial. A study is imported only once it has been quiet (no new instance) for
``DICOM_STUDY_QUIET_SECONDS``: ``settle`` then hands its folder to ``trial.dicom.importer.
import_path`` (validation, de-identification, de-duplication, one transaction per file, the
import job's report) and removes it; with a broker, a worker does that (``import_queued``),
so the listener's process only receives. STOW-RS imports each instance at once with
``import_instance`` (the sender waits for the per-instance answer), through the same
``import_file``.

Spool names are hashes of the UIDs, never the UIDs: the identified files stay only until they
are imported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from trial.dicom.importer import import_file, import_path
from trial.dicom.sources import SourceFile
from trial.lifecycle import TrialLocked
from trial.models import ImportJob, Site

logger = logging.getLogger(__name__)

PART = ".part"
CLAIMED = ".importing-"  # being imported by this process (``recover`` at start-up)
QUEUED = ".queued-"  # handed to a worker (``stale_queued`` hands it off again if it stays)


def spool_root() -> Path:
    return Path(settings.DICOM_SPOOL_DIR)


def _name(uid: str) -> str:
    return hashlib.sha256(uid.encode()).hexdigest()[:32]


def site_folder(site: Site) -> Path:
    return spool_root() / f"site-{site.pk}"


def study_folder(site: Site, study_uid: str) -> Path:
    return site_folder(site) / _name(study_uid)


def receive(site: Site, data: bytes, *, study_uid: str, sop_uid: str) -> Path:
    """Write one received instance (its DICOM file bytes) into the study's spool folder."""
    folder = study_folder(site, study_uid)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{_name(sop_uid)}.dcm"
    temporary = folder / f"{uuid.uuid4().hex}{PART}"
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)  # whole file or none
    return target


def _newest(folder: Path) -> float:
    stamps = [p.stat().st_mtime for p in folder.iterdir() if p.suffix == ".dcm"]
    return max(stamps, default=0.0)


def quiet_seconds() -> float:
    return float(settings.DICOM_STUDY_QUIET_SECONDS)


def waiting(*, now: float | None = None) -> list[tuple[Site, Path, bool]]:
    """(site, study folder, quiet enough to import) for every spooled study."""
    now = time.time() if now is None else now
    found = []
    root = spool_root()
    if not root.exists():
        return found
    sites = {f"site-{site.pk}": site for site in Site.objects.select_related("trial")}
    for site_dir in sorted(root.iterdir()):
        site = sites.get(site_dir.name)
        if site is None or not site_dir.is_dir():
            continue
        for folder in sorted(site_dir.iterdir()):
            if folder.is_dir() and not folder.name.startswith((CLAIMED, QUEUED)):
                newest = _newest(folder)
                found.append((site, folder, bool(newest) and now - newest >= quiet_seconds()))
    return found


def settle(*, now: float | None = None,
           hand_off: Callable[[Site, Path], bool] | None = None) -> list[ImportJob]:
    """Import every spooled study quiet for ``DICOM_STUDY_QUIET_SECONDS``; one job each.

    With ``hand_off`` (the listener, when there is a broker) a quiet study is renamed
    ``.queued-...`` and handed to a worker (``import_queued``), so receiving and importing run
    in different processes; if the hand-off fails (broker down), it is imported here and now.
    Returns the jobs imported here."""
    jobs = []
    for site, folder, quiet in waiting(now=now):
        if not quiet:
            continue
        if hand_off is not None:
            queued = _claim(folder, QUEUED)
            if queued is None:
                continue
            if hand_off(site, queued):
                continue
            job = import_queued(site, queued)  # the broker did not take it: not lost
            if job is not None:
                jobs.append(job)
            continue
        claimed = _claim(folder)
        if claimed is None:  # another settle took it first: skip
            continue
        job = _import_claimed(site, claimed)
        if job is not None:
            jobs.append(job)
    return jobs


def import_queued(site: Site, folder: Path) -> ImportJob | None:
    """Import a study handed off by ``settle`` (a worker's task; safe to run twice: a second
    run finds the folder gone, or imports its files as duplicates). None if already done."""
    if not folder.is_dir():
        return None
    return _import_claimed(site, folder)


def _import_claimed(site: Site, claimed: Path) -> ImportJob | None:
    """Import a claimed study folder and remove it; a locked trial's study is discarded; a
    broken import keeps the folder (logged) for ``recover`` or ``resend_stale``."""
    try:
        job = import_path(claimed, trial=site.trial, site=site)
    except TrialLocked:
        # Locked since it arrived: it will never be imported, and an identified study
        # must not wait on disk for ever.
        logger.warning("A study received for site %s was discarded: its trial is locked", site)
        shutil.rmtree(claimed, ignore_errors=True)
        return None
    except Exception:
        logger.exception("Import of a received study for site %s failed; kept in %s",
                         site, claimed)
        return None
    shutil.rmtree(claimed, ignore_errors=True)
    return job


def stale_queued(*, older_than: float, now: float | None = None) -> list[tuple[Site, Path]]:
    """Studies handed to a worker at least ``older_than`` s ago and still there (the broker
    lost the task, or the import broke): the listener hands them off again."""
    now = time.time() if now is None else now
    root = spool_root()
    if not root.exists():
        return []
    sites = {f"site-{site.pk}": site for site in Site.objects.select_related("trial")}
    found = []
    for folder in sorted(root.glob(f"site-*/{QUEUED}*")):
        site = sites.get(folder.parent.name)
        try:
            touched = folder.stat().st_mtime
        except FileNotFoundError:  # imported meanwhile
            continue
        if site is not None and folder.is_dir() and now - touched >= older_than:
            os.utime(folder)  # handed off again now: not again next round
            found.append((site, folder))
    return found


def import_instance(site: Site, data: bytes, *, name: str,
                    job: ImportJob | None = None) -> dict:
    """Import one instance now (STOW-RS): the import's report entry (imported, duplicate or
    rejected with its reason)."""
    with tempfile.TemporaryDirectory(prefix="cxr-stow-") as tmp:
        path = Path(tmp) / "instance.dcm"
        path.write_bytes(data)
        return import_file(SourceFile(name=name, path=path), trial=site.trial, site=site,
                           job=job)


def recover() -> int:
    """Queue again the study folders a stopped import left claimed (the listener stopped or
    died during ``settle``): ``waiting`` skips claimed folders, so they would never be
    imported. Their files that did go in come back as duplicates. Called when the listener
    starts, before anything settles (one listener per spool)."""
    root = spool_root()
    if not root.exists():
        return 0
    count = 0
    for claimed in sorted(root.glob(f"site-*/{CLAIMED}*")):
        if not claimed.is_dir():
            continue
        original = claimed.with_name(claimed.name[len(CLAIMED):].split("-", 1)[-1])
        original.mkdir(exist_ok=True)
        for item in claimed.iterdir():
            if item.suffix == ".dcm":
                os.replace(item, original / item.name)
        shutil.rmtree(claimed, ignore_errors=True)
        count += 1
    return count


def _claim(folder: Path, prefix: str = CLAIMED) -> Path | None:
    """Take a study folder for import (None: not there, or a ``settle`` took it first)."""
    claimed = folder.with_name(f"{prefix}{uuid.uuid4().hex[:8]}-{folder.name}")
    try:
        folder.rename(claimed)
    except OSError:
        return None
    for leftover in claimed.glob(f"*{PART}"):  # a write that never finished
        leftover.unlink(missing_ok=True)
    return claimed


def import_study(site: Site, study_uid: str, *, job: ImportJob | None = None, by=None,
                 name: str = "instance") -> list[dict] | None:
    """Import one spooled study now, without waiting for it to be quiet (a pull's C-MOVE has
    just delivered it whole): the report entries of its instances, each through
    ``import_file``; None if its folder is not (or no longer) in the spool. The folder goes
    once imported; if the import itself breaks, it is kept claimed (``recover`` queues it
    again)."""
    claimed = _claim(study_folder(site, study_uid))
    if claimed is None:
        return None
    entries = []
    for n, path in enumerate(sorted(claimed.glob("*.dcm")), start=1):
        entries.append(import_file(SourceFile(name=f"{name} {n}", path=path), trial=site.trial,
                                   site=site, by=by, job=job))
    shutil.rmtree(claimed, ignore_errors=True)
    return entries


def discard_study(site: Site, study_uid: str) -> int:
    """Remove what arrived of a study whose retrieval failed (nothing half-imported); the
    number of instances removed."""
    claimed = _claim(study_folder(site, study_uid))
    if claimed is None:
        return 0
    count = len(list(claimed.glob("*.dcm")))
    shutil.rmtree(claimed, ignore_errors=True)
    return count
