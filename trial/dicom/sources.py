"""Turn an import path (file, folder, zip, or a folder holding zips) into a list of files.

A zip is checked from its end record and central directory before anything is extracted:
member count, total uncompressed size and compression ratio (``DICOM_ZIP_MAX_MEMBERS``,
``DICOM_ZIP_MAX_TOTAL_MB``, ``DICOM_ZIP_MAX_RATIO``). Over a limit, the whole zip is refused
with one reason in the report: a zip bomb never expands, and nothing of it is half-imported.
Otherwise its members are listed (so the total is known for the progress bar) and extracted
one at a time, just before each is imported, and deleted right after (``extracted``): the
scratch folder never holds more than one member. Member names are never used as paths (no
zip-slip) and oversized members are not extracted.
"""

from __future__ import annotations

import struct
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .validate import DicomRejected, check_size, max_bytes

CHUNK = 1024 * 1024
RATIO_FLOOR = 1024 * 1024  # smaller members cannot expand to much: their ratio is not checked
DIRECTORY_BYTES_PER_MEMBER = 1024  # central directory entry: 46 bytes + name + extra fields
END_RECORD = struct.Struct("<4s4H2LH")  # PKWARE APPNOTE.TXT 4.3.16, 22 bytes
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 4.3.15, 20 bytes, right after the zip64 record
ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # 4.3.14, 56 bytes


@dataclass
class SourceFile:
    """One file to import: ``name`` for the report, ``path`` on disk, or a reason it failed.

    A zip member has no path until ``extracted``: ``archive`` and ``member`` say where it is.
    """

    name: str
    path: Path | None
    rejected: str | None = None
    archive: zipfile.ZipFile | None = None
    member: zipfile.ZipInfo | None = None


def _skipped(name: str) -> bool:
    """Operating-system litter (.DS_Store, __MACOSX/, ._resource forks) is not reported."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


@contextmanager
def collect(path: Path, workdir: Path) -> Iterator[list[SourceFile]]:
    """All files under ``path`` (recursively); zips are open (closed when the block ends), their
    members listed but not extracted (see ``extracted``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path does not exist: {path}")
    with ExitStack() as archives:
        if path.is_file():
            yield _expand(path, path.name, archives)
            return
        files: list[SourceFile] = []
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = item.relative_to(path).as_posix()
            if not _skipped(relative):
                files.extend(_expand(item, relative, archives))
        yield files


@contextmanager
def extracted(source: SourceFile, workdir: Path) -> Iterator[SourceFile]:
    """``source`` with its bytes on disk: a zip member is extracted into ``workdir`` for the
    block and deleted when it ends (whatever happens); other sources are given as they are."""
    if source.archive is None or source.member is None:
        yield source
        return
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{uuid.uuid4().hex}.member"
    try:
        yield _extract(source.archive, source.member, source.name, target)
    finally:
        target.unlink(missing_ok=True)


def _expand(path: Path, name: str, archives: ExitStack) -> list[SourceFile]:
    if not _is_zip(path):
        return [SourceFile(name, path)]
    try:
        problem = _directory_problem(path)
        if problem is None:
            archive = archives.enter_context(zipfile.ZipFile(path))
            infos = [info for info in archive.infolist() if not info.is_dir()]
            problem = archive_problem(infos, archive_size=path.stat().st_size)
    except (zipfile.BadZipFile, OSError, struct.error) as exc:
        return [SourceFile(name, None, f"not a readable zip file: {exc}")]
    if problem:
        return [SourceFile(name, None, f"zip refused: {problem}; nothing was extracted")]
    return [SourceFile(f"{name}/{info.filename}", None, archive=archive, member=info)
            for info in infos if not _skipped(info.filename)]


def archive_problem(infos: list[zipfile.ZipInfo], *, archive_size: int) -> str | None:
    """Refuse, from the central directory alone, a zip that would expand past a limit."""
    most = settings.DICOM_ZIP_MAX_MEMBERS
    if len(infos) > most:
        return f"it holds {len(infos)} files, over the {most} file limit"
    total = sum(info.file_size for info in infos)
    total_mb = settings.DICOM_ZIP_MAX_TOTAL_MB
    if total > total_mb * 2**20:
        return (f"its files would expand to {total / 2**20:.1f} MB, over the {total_mb} MB "
                f"limit")
    ratio = settings.DICOM_ZIP_MAX_RATIO
    for info in infos:
        if info.file_size > RATIO_FLOOR and info.file_size > ratio * max(info.compress_size, 1):
            fold = info.file_size / max(info.compress_size, 1)
            return (f"{info.filename} would expand {fold:.0f}-fold, over the {ratio}-fold "
                    f"limit")
    if total > RATIO_FLOOR and total > ratio * max(archive_size, 1):
        # members sharing their compressed data (overlapping entries) pass one by one
        fold = total / max(archive_size, 1)
        return f"its files would expand {fold:.0f}-fold, over the {ratio}-fold limit"
    return None


def _directory_problem(path: Path) -> str | None:
    """Refuse a zip whose end record declares too many members (or too large a central
    directory) before ``zipfile`` reads the directory, which keeps every entry in memory."""
    declared = _declared_directory(path)
    if declared is None:
        return None  # no end record: zipfile says why
    members, size = declared
    most = settings.DICOM_ZIP_MAX_MEMBERS
    if members > most:
        return f"it holds {members} files, over the {most} file limit"
    if size > most * DIRECTORY_BYTES_PER_MEMBER:
        return f"its central directory is {size // 2**20} MB, too large for {most} files"
    return None


def _declared_directory(path: Path) -> tuple[int, int] | None:
    """(members, central directory bytes) from the end record (zip64 when it says so)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_start = max(0, size - END_RECORD.size - 65535)  # the comment is at most 64 KB
        fh.seek(tail_start)
        tail = fh.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < END_RECORD.size:
            return None
        fields = END_RECORD.unpack_from(tail, at)
        members, directory = fields[4], fields[5]
        if members != 0xFFFF and directory != 0xFFFFFFFF:
            return members, directory
        if at < ZIP64_LOCATOR.size:
            return members, directory
        if tail[at - ZIP64_LOCATOR.size:at - ZIP64_LOCATOR.size + 4] != b"PK\x06\x07":
            return members, directory
        # the zip64 end record is right before its locator (where zipfile reads it)
        fh.seek(max(0, tail_start + at - ZIP64_LOCATOR.size - ZIP64_END_RECORD.size))
        record = fh.read(ZIP64_END_RECORD.size)
        if len(record) < ZIP64_END_RECORD.size or record[:4] != b"PK\x06\x06":
            return None
        fields = ZIP64_END_RECORD.unpack(record)
        return fields[7], fields[8]


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str,
             target: Path) -> SourceFile:
    if info.flag_bits & 0x1:
        return SourceFile(name, None, "encrypted zip member")
    try:
        check_size(info.file_size)
    except DicomRejected as exc:
        return SourceFile(name, None, exc.reason)
    written = 0
    try:
        with archive.open(info) as src, target.open("wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > max_bytes():  # the header lied about the size
                    raise DicomRejected(f"file is over the {max_bytes() // CHUNK} MB limit")
                dst.write(chunk)
    except DicomRejected as exc:
        target.unlink(missing_ok=True)
        return SourceFile(name, None, exc.reason)
    except Exception as exc:  # corrupt member, unsupported compression: report, don't crash
        target.unlink(missing_ok=True)
        return SourceFile(name, None, f"cannot extract from zip: {exc}")
    return SourceFile(name, target)
