"""Read and validate one incoming DICOM file; every problem becomes a ``DicomRejected`` reason.

Intake must never crash on what people upload (text files, PNGs, half-copied files, DICOMDIRs),
so every failure mode of reading is turned into a short reason a coordinator can act on.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from django.conf import settings
from pydicom.dataset import FileDataset
from pydicom.errors import InvalidDicomError

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
REQUIRED_UIDS = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF


class DicomRejected(Exception):
    """A file that cannot be imported; ``reason`` says why, in words for the coordinator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ValidDicom:
    """A file that passed validation: its dataset (pixels decodable) and its size."""

    path: Path
    ds: FileDataset
    size: int


def max_bytes() -> int:
    return settings.DICOM_MAX_FILE_MB * 1024 * 1024


def check_size(size: int) -> None:
    """Refuse files over ``settings.DICOM_MAX_FILE_MB`` before reading them at all."""
    if size > max_bytes():
        mb = size / (1024 * 1024)
        raise DicomRejected(
            f"file is {mb:.0f} MB, over the {settings.DICOM_MAX_FILE_MB} MB limit"
        )


def read_dicom(path: Path) -> FileDataset:
    """Parse ``path`` as a DICOM Part 10 file, detecting truncation pydicom only warns about."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            raise DicomRejected("not a DICOM file") from None
        except (EOFError, struct.error, OverflowError) as exc:
            raise DicomRejected(f"truncated file: {exc}") from None
        except Exception as exc:  # any parse error is a rejection, not a crash
            raise DicomRejected(f"unreadable DICOM file: {exc}") from None
    for warning in caught:
        if "End of file reached" in str(warning.message):
            raise DicomRejected("truncated file: it ends inside the pixel data")
    _check_last_element(ds)
    return ds


def _check_last_element(ds: FileDataset) -> None:
    """A file cut inside an element leaves that element shorter than its declared length."""
    tags = list(ds.keys())
    if not tags:
        raise DicomRejected("not a DICOM file (empty dataset)")
    last = ds.get_item(tags[-1])
    length = getattr(last, "length", None)
    value = getattr(last, "value", None)
    if length is None or length == UNDEFINED_LENGTH or not isinstance(value, bytes | None):
        return
    got = len(value or b"")
    if got < length:
        raise DicomRejected(
            f"truncated file: element {tags[-1]} has {got} of its {length} bytes"
        )


def validate_file(path: Path, *, allowed_modalities: Iterable[str]) -> ValidDicom:
    """Check size, format, required UIDs, modality and pixel data; decode the pixels once."""
    path = Path(path)
    size = path.stat().st_size
    check_size(size)
    if path.name.upper() == "DICOMDIR":
        raise DicomRejected("DICOMDIR is a media index, not an image")
    ds = read_dicom(path)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        raise DicomRejected("not a DICOM file (no transfer syntax in the file meta)")
    for keyword in REQUIRED_UIDS:
        if not str(ds.get(keyword, "") or "").strip():
            raise DicomRejected(f"missing {keyword}")
    _check_modality(ds, allowed_modalities)
    if "PixelData" not in ds:
        raise DicomRejected("no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in MONOCHROME:
        raise DicomRejected(
            f"photometric interpretation {photometric or '(missing)'} not supported "
            f"(expected MONOCHROME1 or MONOCHROME2)"
        )
    _check_decodes(ds)
    return ValidDicom(path=path, ds=ds, size=size)


def _check_modality(ds: FileDataset, allowed_modalities: Iterable[str]) -> None:
    allowed = [str(m).upper() for m in allowed_modalities]
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if not modality:
        raise DicomRejected("missing Modality")
    if modality not in allowed:
        raise DicomRejected(f"modality {modality} not allowed (allowed: {', '.join(allowed)})")


def _check_decodes(ds: FileDataset) -> None:
    """Decode once: proves the pixels are complete and the transfer syntax is supported."""
    try:
        ds.pixel_array  # noqa: B018 - decoding is the check
    except ValueError as exc:
        if "less than expected" in str(exc):
            raise DicomRejected(f"truncated file: {exc}") from None
        raise DicomRejected(f"pixel data cannot be decoded: {exc}") from None
    except Exception as exc:  # decoder errors vary by plugin
        raise DicomRejected(f"pixel data cannot be decoded: {exc}") from None
