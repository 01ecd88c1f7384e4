"""The viewer's pixel data: real modality values, so the browser can window/level them itself.

An 8-bit rendering fixes the window; a radiologist needs the full range. So the browser gets the
first frame as little-endian uint16, gzip-compressed (the browser decodes it), with one linear
map back to modality units::

    modality value = stored uint16 * scale + offset

For a linear modality LUT (Rescale Slope/Intercept, or none) the uint16 are the stored values
minus their minimum, with ``scale`` = slope and the offset folded in: exact even for a
fractional slope, and no wider than the stored data. A Modality LUT Sequence (not linear) is
applied, rounded, and shifted to start at 0; a range wider than 65535 is scaled down and the
scale recorded. The files (pixels, their preview and a small JSON of metadata) are kept by
content hash under MEDIA_ROOT/derived/<sha256>/, written then renamed, so a page render never
decodes.

They are made at import, from the pixels the import decoded (within ``limits``), and a web
request never decodes a DICOM file: one whose files are missing (imported before this, or
deleted) is refused with ``PixelsNotPrepared`` and remade by a worker (``prepare_viewer``),
or by importing the file again.

A reduced-resolution preview (``preview-u16.gz``) of the same uint16 values, with the same
scale and offset, lets the browser draw something within a fraction of the full file's transfer
time, windowed exactly as the full data will be: each preview pixel is the rounded mean of a
``factor`` x ``factor`` block of the full pixels (an area average, not every n-th pixel: taking
one pixel in 25 keeps each pixel's full noise and aliases thin lines and edges, or misses them,
while the mean is close to what the browser's smoothed downscaling of the full image shows on
a screen of about the preview's size, so the picture changes little when the full data
replaces it; the mean stays within the stored range, so the same lookup table applies). The
factor is the smallest integer bringing the longer side to at most ``PREVIEW_MAX_SIDE``; an
image already that small has no preview. The metadata's ``preview`` says whether there is one;
an image prepared before previews existed has none, and the viewer loads the full data as
before (a re-import, or ``prepare`` in a worker, adds it from the stored pixel file, without
decoding). ``FORMAT_VERSION`` is unchanged: the pixel file and the metadata's other fields are
as before, so files made earlier stay valid.

The metadata carries nothing identifying (no file names, UIDs, dates or source): raters will
use the same viewer under strict blinding.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from django.urls import reverse
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from ..errors import Conflict
from ..models import Image
from .render import derived_dir, first_frame, first_number, inverted, write_atomically
from .validate import load_pixels

FORMAT_VERSION = 1
PIXELS_NAME = "pixels-u16.gz"
PREVIEW_NAME = "preview-u16.gz"
META_NAME = "viewer-meta.json"
# The preview's longer side at most: 2500 x 3000 -> factor 5, 500 x 600 (0.6 MB against 15 MB),
# about the size of the fitted image on a 1280 x 900 screen.
PREVIEW_MAX_SIDE = 640
PREVIEW_METHOD = "area-mean"  # in the metadata and the ETag: a new method gets a new ETag
# gzip at the fast level with the run-length strategy: on radiographs it is 2-4x faster to
# make than the default strategy (2500 x 3000: 110-170 ms against 260-420 ms here) for a file
# at most 5 % larger (noisy 12-16-bit data barely compresses; runs, such as collimated
# borders, still do). Any browser decodes it.
GZIP_LEVEL = 1
GZIP_STRATEGY = zlib.Z_RLE
WORTH_COMPRESSING = 0.9  # compress only if a sample shrinks to under 90 % (``compresses``)
SAMPLE_BANDS = 8
SAMPLE_WHOLE_BELOW = 256 * 1024
HISTOGRAM_SAMPLES = 1_000_000  # presets come from a regular sample of about this many pixels
U16_MAX = 65535
HU_PRESETS = (("Lung", -600.0, 1500.0), ("Mediastinum", 40.0, 400.0), ("Bone", 400.0, 1800.0))


class PixelsNotPrepared(Conflict):
    """The image's viewer files do not exist; a request refuses rather than decode the DICOM."""


def viewer_pixels(image: Image) -> Path:
    """The gzip-compressed uint16 pixels of ``image``, made at import (never decoded here)."""
    target = derived_dir(image) / PIXELS_NAME
    if not target.exists():
        not_prepared(image)
    return target


def viewer_preview(image: Image) -> tuple[Path, dict[str, Any]] | None:
    """(file, its description) of the image's reduced-resolution preview, or None if it has
    none (small image, prepared before previews existed, file deleted). Never made here."""
    folder = derived_dir(image)
    meta = _read_meta(folder / META_NAME)
    if meta is None:
        not_prepared(image)
    preview = meta.get("preview")
    target = folder / PREVIEW_NAME
    return (target, preview) if preview and target.exists() else None


def viewer_meta(image: Image) -> dict[str, Any]:
    """JSON-able metadata the viewer needs to interpret the pixels and to start drawing.

    ``preview`` is None, or where and how big the reduced-resolution preview is (its pixels
    use the same ``scale`` and ``offset``; one preview pixel covers ``factor`` x ``factor``
    full pixels, fewer at the right and bottom edges)."""
    folder = derived_dir(image)
    meta = _read_meta(folder / META_NAME)
    if meta is None:
        not_prepared(image)
    preview = meta.pop("preview", None)
    if preview and (folder / PREVIEW_NAME).exists():
        preview = {"url": reverse("image-preview", args=[image.pk]),
                   **{k: preview[k] for k in ("rows", "columns", "factor")}}
    else:
        preview = None
    return {"id": image.pk, **meta,
            "pixels_url": reverse("image-pixels", args=[image.pk]), "preview": preview}


def is_prepared(image: Image) -> bool:
    """Are the image's viewer files all there: pixels, metadata of this format, and the
    preview if the image is large enough to need one?"""
    folder = derived_dir(image)
    meta = _read_meta(folder / META_NAME)
    return meta is not None and (folder / PIXELS_NAME).exists() and _has_preview(folder, meta)


def not_prepared(image: Image) -> NoReturn:
    """Refuse (409), and have a worker make the files if there is one (never this process)."""
    from ..tasks import queue_prepare_viewer  # the tasks import the importer, which imports us

    if queue_prepare_viewer(image):
        raise PixelsNotPrepared("This image is being prepared for the viewer; try again in a "
                                "minute.")
    raise PixelsNotPrepared("This image was not prepared for the viewer when it was imported; "
                            "run `manage.py prepare_images` to prepare it.")


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return meta if meta.get("version") == FORMAT_VERSION else None


def prepare(image: Image, ds: Dataset | None = None,
            pixels: np.ndarray | None = None) -> dict[str, Any]:
    """Write the viewer's pixels, preview and metadata (write then rename, each); returns the
    metadata.

    An import passes the data set and the pixels it decoded; without them (a worker, a
    re-import) existing files are kept (a missing preview is made from the stored pixel
    file), else the stored file is decoded within the import's limits (``DicomRejected`` if
    over them). The metadata is written last: it is what says the files are there. Never
    called by a web request."""
    folder = derived_dir(image)
    if ds is None or pixels is None:
        meta = _read_meta(folder / META_NAME)
        if meta is not None and (folder / PIXELS_NAME).exists():
            if _has_preview(folder, meta):
                return meta
            stored = _stored_pixels(folder / PIXELS_NAME, meta)
            if stored is not None:  # prepared before previews: add one, no decoding
                meta = {**meta, "preview": _write_preview(folder, stored)}
                _write_meta(folder, meta)
                return meta
        with image.file.open("rb") as fh:
            ds, pixels = load_pixels(fh)
    u16, scale, offset = encode_pixels(ds, pixels)
    packed = gzip_bytes(u16)
    write_atomically(folder / PIXELS_NAME, lambda out: out.write(packed))
    meta = _describe(ds, u16, scale=scale, offset=offset)
    meta["preview"] = _write_preview(folder, u16)
    _write_meta(folder, meta)
    return meta


def _write_meta(folder: Path, meta: dict[str, Any]) -> None:
    text = json.dumps(meta, separators=(",", ":")).encode()
    write_atomically(folder / META_NAME, lambda out: out.write(text))


def _has_preview(folder: Path, meta: dict[str, Any]) -> bool:
    """Is the preview as it should be: there if the image needs one, none if not?"""
    if preview_factor(int(meta["rows"]), int(meta["columns"])) == 1:
        return True
    return bool(meta.get("preview")) and (folder / PREVIEW_NAME).exists()


def _stored_pixels(path: Path, meta: dict[str, Any]) -> np.ndarray | None:
    """The pixel file's uint16 (inflated no further than the metadata's size), or None if it
    does not match the metadata."""
    rows, columns = int(meta["rows"]), int(meta["columns"])
    expected = rows * columns * 2
    try:
        raw = zlib.decompressobj(31).decompress(path.read_bytes(), expected + 1)
    except zlib.error:
        return None
    if len(raw) != expected:
        return None
    return np.frombuffer(raw, dtype="<u2").reshape(rows, columns)


def _write_preview(folder: Path, u16: np.ndarray) -> dict[str, Any] | None:
    """Write the preview of ``u16`` (if the image needs one); its description for the meta."""
    factor = preview_factor(*u16.shape)
    if factor == 1:
        (folder / PREVIEW_NAME).unlink(missing_ok=True)
        return None
    small = downsample(u16, factor)
    packed = gzip_bytes(small)
    write_atomically(folder / PREVIEW_NAME, lambda out: out.write(packed))
    return {"rows": int(small.shape[0]), "columns": int(small.shape[1]), "factor": factor,
            "method": PREVIEW_METHOD}


def preview_factor(rows: int, columns: int) -> int:
    """The smallest integer factor bringing the longer side to ``PREVIEW_MAX_SIDE`` or less."""
    return max(1, -(-max(rows, columns) // PREVIEW_MAX_SIDE))


def downsample(u16: np.ndarray, factor: int) -> np.ndarray:
    """Each ``factor`` x ``factor`` block's mean, rounded half up (exact integer arithmetic);
    the blocks at the right and bottom edges are narrower and averaged over what they hold.

    Sums rows of blocks first, then columns (2500 x 3000 by 5: about 10 ms)."""
    rows, columns = u16.shape
    out_rows, out_columns = -(-rows // factor), -(-columns // factor)
    acc = np.uint32 if factor * factor * U16_MAX < 2**32 else np.uint64
    whole_rows, whole_columns = rows // factor, columns // factor
    banded = np.empty((out_rows, columns), dtype=acc)
    np.sum(u16[:whole_rows * factor].reshape(whole_rows, factor, columns), axis=1, dtype=acc,
           out=banded[:whole_rows])
    if whole_rows < out_rows:
        banded[whole_rows] = u16[whole_rows * factor:].sum(axis=0, dtype=acc)
    sums = np.empty((out_rows, out_columns), dtype=acc)
    np.sum(banded[:, :whole_columns * factor].reshape(out_rows, whole_columns, factor), axis=2,
           dtype=acc, out=sums[:, :whole_columns])
    if whole_columns < out_columns:
        sums[:, whole_columns] = banded[:, whole_columns * factor:].sum(axis=1, dtype=acc)
    heights = np.full(out_rows, factor, dtype=np.uint64)
    heights[-1] = rows - (out_rows - 1) * factor
    widths = np.full(out_columns, factor, dtype=np.uint64)
    widths[-1] = columns - (out_columns - 1) * factor
    counts = np.outer(heights, widths)
    return ((2 * sums.astype(np.uint64) + counts) // (2 * counts)).astype(np.uint16)


def encode_pixels(ds: Dataset, pixels: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, float, float]:
    """(uint16 array, scale, offset) of the first frame, modality = uint16 * scale + offset.

    ``pixels``: the data set's decoded pixels, when the caller has them already."""
    arr = first_frame(ds, pixels)
    linear = not ds.get("ModalityLUTSequence")
    if linear and arr.dtype.kind in "ui" and arr.dtype.itemsize <= 2:
        slope, intercept = 1.0, 0.0
        if "RescaleSlope" in ds and "RescaleIntercept" in ds:  # as pydicom decides
            slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low = int(arr.min())
        if arr.dtype.kind == "u":  # no sign: subtract in place of a wider copy
            u16 = np.subtract(arr, low, dtype=np.uint16)
        else:
            u16 = np.subtract(arr, low, dtype=np.int32).astype(np.uint16)
        return u16, slope, intercept + slope * low
    values = np.rint(np.asarray(apply_modality_lut(arr, ds), dtype=np.float64))
    low, high = float(values.min()), float(values.max())
    scale = (high - low) / U16_MAX if high - low > U16_MAX else 1.0
    u16 = np.rint((values - low) / scale).astype(np.uint16)
    return u16, scale, low


def gzip_bytes(u16: np.ndarray) -> bytes:
    """The little-endian bytes of ``u16``, gzip (no name, no time: same input, same bytes).

    Compressed only when a sample says it pays (``compresses``); otherwise stored blocks,
    still gzip for the browser, made at copying speed (2 MiB: 2 ms against 35 ms)."""
    data = memoryview(np.ascontiguousarray(u16, dtype="<u2")).cast("B")
    level = GZIP_LEVEL if compresses(data) else 0
    packer = zlib.compressobj(level, zlib.DEFLATED, 31, 8, GZIP_STRATEGY)
    return packer.compress(data) + packer.flush()


def compresses(data: memoryview) -> bool:
    """Whether gzip would shrink ``data`` below ``WORTH_COMPRESSING`` of its size, judged
    from ``SAMPLE_BANDS`` bands spread over it (an eighth of it in all; a small buffer whole).

    Noisy 16-bit pixels shrink by 4 %, not worth 35 ms per 2 MiB at every import; 12-bit
    pixels or collimated borders shrink by 20 % or more, worth it for every reader's fetch."""
    size = len(data)
    if size <= SAMPLE_WHOLE_BELOW:
        bands = [data]
    else:
        band = size // (SAMPLE_BANDS * 8)
        bands = [data[i * size // SAMPLE_BANDS:][:band] for i in range(SAMPLE_BANDS)]
    packed = 0
    for part in bands:
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15, 8, GZIP_STRATEGY)
        packed += len(packer.compress(part)) + len(packer.flush())
    return packed < WORTH_COMPRESSING * sum(len(part) for part in bands)


def _describe(ds: Dataset, u16: np.ndarray, *, scale: float, offset: float) -> dict[str, Any]:
    """Metadata from the decoded data: range, default window, inversion, presets."""
    levels = int(u16.max()) + 1
    step = max(1, int((u16.size / HISTOGRAM_SAMPLES) ** 0.5))
    cumulative = np.cumsum(np.bincount(u16[::step, ::step].ravel(), minlength=levels))

    def value(u: float) -> float:
        return _num(u * scale + offset)

    def percentile(q: float) -> float:
        """Modality value at percentile ``q`` (a negative scale reverses the order)."""
        q = q if scale >= 0 else 100.0 - q
        index = int(np.searchsorted(cumulative, cumulative[-1] * q / 100.0))
        return value(min(index, levels - 1))

    lowest, highest = sorted((value(0), value(levels - 1)))
    full = _window(lowest, highest, scale)
    default, source, note = _file_window(ds, full)
    invert = inverted(ds)
    hu = str(ds.get("RescaleType", "") or "").upper() == "HU" or ds.get("Modality") == "CT"
    presets = [{"name": "Default", **default, "title": f"The image's own window ({source})"}]
    if hu:
        presets += [{"name": name, "center": c, "width": w, "title": f"{name} window (HU)"}
                    for name, c, w in HU_PRESETS]
    else:
        # Derived from this image's histogram: dark on screen = low values, unless inverted.
        dark = (percentile(1), percentile(55)) if not invert else (percentile(45), percentile(99))
        bright = (percentile(45), percentile(99.5)) if not invert else (percentile(0.5),
                                                                       percentile(55))
        presets += [
            {"name": "Auto", **_window(percentile(1), percentile(99), scale),
             "title": "1st to 99th percentile of this image's values"},
            {"name": "Lung", **_window(*dark, scale),
             "title": "The darker half of this image's values (lung fields)"},
            {"name": "Bone", **_window(*bright, scale),
             "title": "The brighter half of this image's values (bone, mediastinum)"},
        ]
    presets.append({"name": "Full range", **full, "title": "Every value in the image"})
    return {
        "version": FORMAT_VERSION,
        "rows": int(u16.shape[0]),
        "columns": int(u16.shape[1]),
        "format": "uint16le",
        "levels": levels,
        "scale": _num(scale),
        "offset": _num(offset),
        "min": lowest,
        "max": highest,
        "window": default,
        "window_source": source,
        "window_note": note,
        "invert": invert,
        "hu": hu,
        "presets": [{**p, "key": str(i)} for i, p in enumerate(presets[:9], start=1)],
    }


def _file_window(ds: Dataset, full: dict[str, float]) -> tuple[dict[str, float], str, str]:
    """(window, where it came from, note): the file's first window, its VOI LUT, or all."""
    center = first_number(ds.get("WindowCenter"))
    width = first_number(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        note = "" if function.startswith("LINEAR") else (
            f"The file asks for a {function} window; shown as a linear one.")
        return {"center": _num(center), "width": _num(width)}, "file window", note
    if ds.get("VOILUTSequence"):
        entries, first, _bits = (int(v) for v in ds.VOILUTSequence[0].LUTDescriptor)
        entries = entries or 65536
        return ({"center": _num(first + (entries - 1) / 2), "width": _num(entries)},
                "file VOI LUT",
                "The file's VOI LUT is approximated by a linear window over its input range.")
    return full, "full range", ""


def _window(low: float, high: float, scale: float) -> dict[str, float]:
    """Centre/width covering [low, high]; at least one stored step wide."""
    width = max(high - low, abs(scale), 1e-6)
    return {"center": _num((low + high) / 2), "width": _num(width)}


def _num(x: float) -> float | int:
    """A plain JSON number (never a numpy one): an int when whole, else the exact float."""
    x = float(x)
    return int(x) if x.is_integer() and abs(x) < 2**53 else x
