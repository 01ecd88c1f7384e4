"""Limits that keep a hostile file from exhausting memory (DICOM decompression bombs).

A few MB can declare a 60000 x 60000 image: a deflated data set of zeros, or RLE runs of 128
bytes in 2. So nothing is inflated or decoded before its size is known and allowed:

* the header's Rows x Columns x frames x samples (``DICOM_MAX_PIXELS``) and the bytes they
  decode to (at most that many 16-bit pixels) are checked before the pixel data is read;
* a deflated data set is inflated in steps, with a cap on the bytes it may produce;
* every compressed frame is checked against the size the header declares before it is decoded
  (RLE segments are measured without being expanded; JPEG and JPEG 2000 codestreams carry
  their own dimensions), so one frame never decodes to more than the header allowed;
* the decoded array is checked again afterwards.

Functions here return a reason (or raise ``Exceeded``); ``validate`` turns them into
``DicomRejected``.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import BinaryIO

import libjpeg
import openjpeg
from django.conf import settings
from pydicom import uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

HEADER_MAX_BYTES = 64 * 1024 * 1024  # a data set up to its pixel data: KB in practice
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00009, 0x7FE00008})  # PixelData, Float, DoubleFloat
BYTES_PER_ALLOWED_PIXEL = 2  # the decoded budget is DICOM_MAX_PIXELS 16-bit pixels
RLE_PADDING = 256  # decoded bytes an RLE segment may have past its plane (pydicom tolerates)
INFLATE_STEP = 1024 * 1024
UNDEFINED_LENGTH = 0xFFFFFFFF

JPEG = frozenset({uid.JPEGBaseline8Bit, uid.JPEGExtended12Bit, uid.JPEGLossless,
                  uid.JPEGLosslessSV1, uid.JPEGLSLossless, uid.JPEGLSNearLossless})
JPEG2000 = frozenset({uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless,
                      uid.HTJ2KLosslessRPCL, uid.HTJ2K})


class Exceeded(Exception):
    """A limit was reached while inflating; the message says which, for the report."""


def max_pixels() -> int:
    return settings.DICOM_MAX_PIXELS


def max_decoded_bytes() -> int:
    """What decoding one file may allocate: ``DICOM_MAX_PIXELS`` pixels of 16 bits."""
    return settings.DICOM_MAX_PIXELS * BYTES_PER_ALLOWED_PIXEL


def mb(n: int) -> str:
    """A byte count for a coordinator: "240 MB", or bytes when under one MB."""
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n} bytes"


def megapixels(n: int) -> str:
    return f"{n / 1e6:.4g}"


@dataclass(frozen=True)
class Geometry:
    """What the header says the pixel data decodes to."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int

    @property
    def pixels(self) -> int:
        return self.rows * self.columns * self.frames * self.samples

    @property
    def bytes_per_sample(self) -> int:
        return max(1, -(-self.bits_allocated // 8))  # 1-bit data decodes to one byte a pixel

    @property
    def frame_bytes(self) -> int:
        return self.rows * self.columns * self.samples * self.bytes_per_sample

    @property
    def decoded_bytes(self) -> int:
        return self.frame_bytes * self.frames

    def describe(self) -> str:
        frames = f" x {self.frames} frames" if self.frames > 1 else ""
        samples = f" x {self.samples} samples" if self.samples > 1 else ""
        return f"{self.rows} x {self.columns} pixels{frames}{samples}"


FrameCheck = Callable[[bytes, Geometry], "str | None"]


def geometry(ds: Dataset) -> Geometry | str:
    """The header's image size, or the reason it cannot be read."""
    values = {}
    for keyword in ("Rows", "Columns", "BitsAllocated"):
        try:
            values[keyword] = int(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            values[keyword] = 0
        if values[keyword] <= 0:
            return f"missing or invalid {keyword}"
    try:
        frames = max(1, int(ds.get("NumberOfFrames") or 1))
        samples = max(1, int(ds.get("SamplesPerPixel") or 1))
    except (TypeError, ValueError):
        return "invalid NumberOfFrames or SamplesPerPixel"
    return Geometry(values["Rows"], values["Columns"], frames, samples, values["BitsAllocated"])


def size_problem(size: Geometry, *, stored_length: int | None = None) -> str | None:
    """Refuse, from the header alone, an image over ``DICOM_MAX_PIXELS`` or its byte budget.

    ``stored_length`` is the pixel data element's declared length (native data): more than the
    budget is refused before it is read or inflated."""
    limit = max_pixels()
    if size.pixels > limit:
        return (f"image is {size.describe()} ({megapixels(size.pixels)} megapixels), "
                f"over the {megapixels(limit)} megapixel limit")
    budget = max_decoded_bytes()
    if size.decoded_bytes > budget:
        return (f"image is {size.describe()} of {size.bits_allocated} bits "
                f"({mb(size.decoded_bytes)} decoded), over the {mb(budget)} limit "
                f"({megapixels(limit)} megapixels of 16 bits)")
    if stored_length is not None and stored_length != UNDEFINED_LENGTH and stored_length > budget:
        return f"pixel data is {mb(stored_length)}, over the {mb(budget)} limit"
    return None


def frames_problem(ds: Dataset, size: Geometry) -> str | None:
    """Check each compressed frame against ``size`` before any of them is decoded."""
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_encapsulated:
        return None  # native: the bytes are the pixels, already bounded by the file size
    if syntax == uid.RLELossless:
        check = _rle_problem
    elif syntax in JPEG:
        check = _codestream_problem("JPEG", libjpeg.get_parameters)
    elif syntax in JPEG2000:
        check = _codestream_problem("JPEG 2000", openjpeg.get_parameters)
    else:
        return f"transfer syntax {syntax.name} is not supported"
    extended = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    try:
        frames = generate_frames(ds.PixelData, number_of_frames=size.frames,
                                 extended_offsets=extended)
        for n, frame in enumerate(islice(frames, size.frames), start=1):
            problem = check(frame, size)
            if problem:
                where = f"frame {n}" if size.frames > 1 else "the frame"
                return f"{where}: {problem}"
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return f"encapsulated pixel data cannot be read: {exc}"
    return None


def _rle_problem(frame: bytes, size: Geometry) -> str | None:
    """PS3.5 G: a 64-byte header of segment offsets, one segment per byte of each sample.

    Each segment is measured (its runs summed, never expanded) and must not decode to more
    than its plane of Rows x Columns bytes."""
    if size.bits_allocated % 8:
        return f"RLE data of {size.bits_allocated} bits allocated is not supported"
    if len(frame) < 64:
        return "RLE header is missing"
    header = struct.unpack("<16L", frame[:64])
    count = header[0]
    expected = size.samples * size.bytes_per_sample
    if count != expected or count > 15:
        return f"RLE data has {count} segments, the header's image needs {expected}"
    offsets = [*header[1:count + 1], len(frame)]
    plane = size.rows * size.columns
    for n in range(count):
        start, end = offsets[n], offsets[n + 1]
        if not 64 <= start <= end <= len(frame):
            return f"RLE segment {n + 1} has an invalid offset"
        decoded = rle_decoded_length(frame, start, end, limit=plane + RLE_PADDING)
        if decoded > plane + RLE_PADDING:
            return (f"RLE segment {n + 1} decodes to more than the {plane} bytes of a "
                    f"{size.rows} x {size.columns} image")
    return None


def rle_decoded_length(data: bytes, start: int, end: int, *, limit: int) -> int:
    """Bytes that the PackBits segment ``data[start:end]`` decodes to; stops once past ``limit``.

    Header byte n: 0-127 copies the next n + 1 bytes, 129-255 repeats the next byte 257 - n
    times, 128 is a no-op (as pydicom decodes it)."""
    pos, total = start, 0
    while pos < end and total <= limit:
        n = data[pos]
        if n < 128:
            total += n + 1
            pos += n + 2
        elif n > 128:
            total += 257 - n
            pos += 2
        else:
            pos += 1
    return total


def _codestream_problem(kind: str, parameters: Callable[[bytes], dict]) -> FrameCheck:
    """A check of a JPEG or JPEG 2000 frame's own dimensions (read from its header only)."""

    def check(frame: bytes, size: Geometry) -> str | None:
        try:
            found = parameters(frame)
        except Exception as exc:  # noqa: BLE001 - the libraries raise RuntimeError or worse
            return f"{kind} data cannot be read: {exc}"
        rows, columns = int(found.get("rows", 0)), int(found.get("columns", 0))
        samples = int(found.get("samples_per_pixel", found.get("nr_components", 0)))
        precision = int(found.get("precision", 0))
        if (rows, columns, samples) != (size.rows, size.columns, size.samples):
            return (f"{kind} data is {rows} x {columns} pixels of {samples} samples, the "
                    f"header says {size.rows} x {size.columns} of {size.samples}")
        if precision > 8 * size.bytes_per_sample:
            return (f"{kind} data has {precision}-bit samples, more than the header's "
                    f"{size.bits_allocated} bits allocated")
        return None

    return check


class BoundedInflate(io.RawIOBase):
    """A seekable, read-only view of a raw-deflate stream, inflated on demand.

    What has been inflated is kept (pydicom seeks back); producing more than ``limit`` bytes
    raises ``Exceeded``, so a deflated data set never inflates past what is allowed."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        super().__init__()
        self._source = source
        self._limit = limit
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self._data = bytearray()
        self._pos = 0
        self._finished = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            self._fill(None)
            offset += len(self._data)
        self._pos = max(0, offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = None if size is None or size < 0 else self._pos + size
        self._fill(end)
        stop = len(self._data) if end is None else min(end, len(self._data))
        if stop <= self._pos:
            return b""
        with memoryview(self._data) as view:
            chunk = view[self._pos:stop].tobytes()
        self._pos = stop
        return chunk

    def readinto(self, buffer: bytearray | memoryview) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)

    def _fill(self, end: int | None) -> None:
        """Inflate until ``end`` bytes exist (None: all), refusing to pass the limit."""
        while not self._finished and (end is None or len(self._data) < end):
            room = self._limit - len(self._data)
            if room < 0:
                raise Exceeded(f"deflated data set inflates to more than {mb(self._limit)}")
            data = self._inflater.unconsumed_tail or self._source.read(INFLATE_STEP)
            if not data:
                self._finished = True  # a truncated stream reads as the end of the file
                break
            self._data += self._inflater.decompress(data, min(room + 1, INFLATE_STEP))
            if self._inflater.eof:
                self._finished = True
        if len(self._data) > self._limit:
            raise Exceeded(f"deflated data set inflates to more than {mb(self._limit)}")
