"""Read and validate one incoming DICOM file; every problem becomes a ``DicomRejected`` reason.

Intake must never crash on what people upload (text files, PNGs, half-copied files, DICOMDIRs),
so every failure mode of reading is turned into a short reason a coordinator can act on. Nor
may it run out of memory on a decompression bomb: the image's size is checked from the header
before the pixel data is read, inflated or decoded (``limits``).
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from django.conf import settings
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_partial, read_preamble
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from .limits import (
    HEADER_MAX_BYTES,
    PIXEL_TAGS,
    BoundedInflate,
    Exceeded,
    Geometry,
    frames_problem,
    geometry,
    max_decoded_bytes,
    size_problem,
)

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
REQUIRED_UIDS = ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
StopWhen = Callable[[int, "str | None", int], bool]


class DicomRejected(Exception):
    """A file that cannot be imported; ``reason`` says why, in words for the coordinator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ValidDicom:
    """A file that passed validation: its dataset, its decoded pixels (once) and its size."""

    path: Path
    ds: FileDataset
    size: int
    pixels: np.ndarray


def max_bytes() -> int:
    return settings.DICOM_MAX_FILE_MB * 1024 * 1024


def check_size(size: int) -> None:
    """Refuse files over ``settings.DICOM_MAX_FILE_MB`` before reading them at all."""
    if size > max_bytes():
        mb = size / (1024 * 1024)
        raise DicomRejected(
            f"file is {mb:.0f} MB, over the {settings.DICOM_MAX_FILE_MB} MB limit"
        )


@dataclass
class Header:
    """A data set read up to its pixel data, and that element's tag and declared length."""

    ds: FileDataset
    pixel_tag: int | None
    pixel_length: int | None


def read_header(source: Path | BinaryIO) -> Header:
    """The data set up to its pixel data: nothing of the pixels is read, inflated or decoded."""
    found: list[tuple[int, int]] = []

    def at_pixels(tag: int, vr: str | None, length: int) -> bool:
        if tag in PIXEL_TAGS:
            found.append((int(tag), length))
            return True
        return False

    ds = _parse(source, stop_when=at_pixels, inflate_limit=HEADER_MAX_BYTES)
    tag, length = found[0] if found else (None, None)
    return Header(ds=ds, pixel_tag=tag, pixel_length=length)


def read_dicom(source: Path | BinaryIO) -> FileDataset:
    """Parse a whole DICOM Part 10 file, detecting truncation pydicom only warns about.

    A deflated data set is inflated in steps up to the header cap plus the decoded budget."""
    ds = _parse(source, stop_when=None, inflate_limit=HEADER_MAX_BYTES + max_decoded_bytes())
    _check_last_element(ds)
    return ds


def _parse(source: Path | BinaryIO, *, stop_when: StopWhen | None,
           inflate_limit: int) -> FileDataset:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with _opened(source) as fh:
                ds = _read(fh, stop_when=stop_when, inflate_limit=inflate_limit)
        except Exceeded as exc:
            raise DicomRejected(str(exc)) from None
        except InvalidDicomError:
            raise DicomRejected("not a DICOM file") from None
        except (EOFError, struct.error, OverflowError) as exc:
            raise DicomRejected(f"truncated file: {exc}") from None
        except Exception as exc:  # any parse error is a rejection, not a crash
            raise DicomRejected(f"unreadable DICOM file: {exc}") from None
    for warning in caught:
        if "End of file reached" in str(warning.message):
            raise DicomRejected("truncated file: it ends inside the pixel data")
    return ds


@contextmanager
def _opened(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    if isinstance(source, str | Path):
        with Path(source).open("rb") as fh:
            yield fh
    else:
        source.seek(0)
        yield source


def _read(fh: BinaryIO, *, stop_when: StopWhen | None, inflate_limit: int) -> FileDataset:
    """pydicom's reader, except that a deflated data set is inflated in bounded steps.

    pydicom inflates a Deflated Explicit VR Little Endian data set in one call, whatever it
    grows to; here it is read through ``BoundedInflate`` (and stops at the pixel data when
    asked), exactly as pydicom would parse the inflated bytes."""
    preamble = read_preamble(fh, False)
    try:
        meta = FileMetaDataset(read_dataset(fh, is_implicit_VR=False, is_little_endian=True,
                                            stop_when=_past_file_meta))
        deflated = meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    except Exception:  # an odd file meta: pydicom's reader copes or says why
        deflated = False
    if not deflated:
        fh.seek(0)
        return read_partial(fh, stop_when=stop_when)
    inflated = BoundedInflate(fh, inflate_limit)
    dataset = read_dataset(inflated, is_implicit_VR=False, is_little_endian=True,
                           stop_when=stop_when)
    ds = FileDataset(getattr(fh, "name", "<deflated>"), dataset, preamble, meta,
                     is_implicit_VR=False, is_little_endian=True)
    ds.set_original_encoding(False, True, dataset.original_character_set)
    return ds


def _past_file_meta(tag: int, vr: str | None, length: int) -> bool:
    return tag >> 16 != 2


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
    """Check size, format, required UIDs, modality and pixel data; decode the pixels once.

    The image's size is checked from the header before its pixel data is read (see
    ``limits``): a decompression bomb is refused without being inflated or decoded."""
    path = Path(path)
    size = path.stat().st_size
    check_size(size)
    if path.name.upper() == "DICOMDIR":
        raise DicomRejected("DICOMDIR is a media index, not an image")
    header = read_header(path)
    ds = header.ds
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        raise DicomRejected("not a DICOM file (no transfer syntax in the file meta)")
    for keyword in REQUIRED_UIDS:
        if not str(ds.get(keyword, "") or "").strip():
            raise DicomRejected(f"missing {keyword}")
    _check_modality(ds, allowed_modalities)
    if header.pixel_tag != PIXEL_DATA:
        raise DicomRejected("no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in MONOCHROME:
        raise DicomRejected(
            f"photometric interpretation {photometric or '(missing)'} not supported "
            f"(expected MONOCHROME1 or MONOCHROME2)"
        )
    full, pixels = _decode_within_limits(path, header)
    return ValidDicom(path=path, ds=full, size=size, pixels=pixels)


def load_pixels(source: Path | BinaryIO) -> tuple[FileDataset, np.ndarray]:
    """Read a stored file and decode its pixels, within the same limits as an import.

    For a worker remaking derived files; a web request never calls this."""
    header = read_header(source)
    if header.pixel_tag != PIXEL_DATA:
        raise DicomRejected("no pixel data")
    return _decode_within_limits(source, header)


def _decode_within_limits(source: Path | BinaryIO,
                          header: Header) -> tuple[FileDataset, np.ndarray]:
    """Header size -> whole file (bounded) -> each compressed frame -> decode -> decoded size."""
    _check_size_of(header.ds, stored_length=_native_length(header))
    ds = read_dicom(source)
    size = _check_size_of(ds)
    problem = frames_problem(ds, size)
    if problem:
        raise DicomRejected(problem)
    pixels = _decode(ds)
    if pixels.nbytes > size.decoded_bytes:  # which the header check kept within the budget
        raise DicomRejected(
            f"pixel data decoded to {pixels.nbytes} bytes, more than the header's "
            f"{size.describe()}"
        )
    return ds, pixels


def _native_length(header: Header) -> int | None:
    """The pixel data's declared length when it is not encapsulated (else None)."""
    syntax = header.ds.file_meta.get("TransferSyntaxUID")
    if syntax is None or UID(syntax).is_encapsulated:
        return None
    return header.pixel_length


def _check_size_of(ds: Dataset, *, stored_length: int | None = None) -> Geometry:
    size = geometry(ds)
    if isinstance(size, str):
        raise DicomRejected(size)
    problem = size_problem(size, stored_length=stored_length)
    if problem:
        raise DicomRejected(problem)
    return size


def _check_modality(ds: FileDataset, allowed_modalities: Iterable[str]) -> None:
    allowed = [str(m).upper() for m in allowed_modalities]
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if not modality:
        raise DicomRejected("missing Modality")
    if modality not in allowed:
        raise DicomRejected(f"modality {modality} not allowed (allowed: {', '.join(allowed)})")


def _decode(ds: FileDataset) -> np.ndarray:
    """Decode once: proves the pixels are complete and the transfer syntax is supported."""
    try:
        return ds.pixel_array
    except ValueError as exc:
        if "less than expected" in str(exc):
            raise DicomRejected(f"truncated file: {exc}") from None
        raise DicomRejected(f"pixel data cannot be decoded: {exc}") from None
    except Exception as exc:  # decoder errors vary by plugin
        raise DicomRejected(f"pixel data cannot be decoded: {exc}") from None
