"""Turn an import path (file, folder, zip, or a folder holding zips) into a list of files.

Zips are extracted into a scratch folder up front so the total is known for the progress bar;
member names are never used as paths (no zip-slip) and oversized members are not extracted.
"""

from __future__ import annotations

import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .validate import DicomRejected, check_size, max_bytes

CHUNK = 1024 * 1024


@dataclass
class SourceFile:
    """One file to import: ``name`` for the report, ``path`` on disk, or a reason it failed."""

    name: str
    path: Path | None
    rejected: str | None = None


def _skipped(name: str) -> bool:
    """Operating-system litter (.DS_Store, __MACOSX/, ._resource forks) is not reported."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip"


def collect(path: Path, workdir: Path) -> list[SourceFile]:
    """All files under ``path`` (recursively), zip members extracted into ``workdir``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path does not exist: {path}")
    if path.is_file():
        return _expand(path, path.name, workdir)
    files: list[SourceFile] = []
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = item.relative_to(path).as_posix()
        if not _skipped(relative):
            files.extend(_expand(item, relative, workdir))
    return files


def _expand(path: Path, name: str, workdir: Path) -> list[SourceFile]:
    if not _is_zip(path):
        return [SourceFile(name, path)]
    try:
        with zipfile.ZipFile(path) as archive:
            return [_extract(archive, info, name, workdir)
                    for info in archive.infolist()
                    if not info.is_dir() and not _skipped(info.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        return [SourceFile(name, None, f"not a readable zip file: {exc}")]


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str,
             workdir: Path) -> SourceFile:
    name = f"{zip_name}/{info.filename}"
    if info.flag_bits & 0x1:
        return SourceFile(name, None, "encrypted zip member")
    try:
        check_size(info.file_size)
    except DicomRejected as exc:
        return SourceFile(name, None, exc.reason)
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{uuid.uuid4().hex}.member"
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
