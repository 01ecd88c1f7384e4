"""Turn a stored DICOM into display pixels, the way a diagnostic viewer would.

Order (PS3.4 N.2): stored values -> modality LUT (rescale or LUT) -> VOI (window or VOI LUT)
-> presentation (MONOCHROME1 and INVERSE flip). Derivatives are cached on disk by content
hash, so the reader's viewer and the AI worker never decode the same image twice.

``pixels_decoded`` lets a higher app make its own derivatives at import, from the pixels the
import decoded (drafting: the model's PNG), without the trial app importing it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import django.dispatch
import numpy as np
from django.conf import settings
from PIL import Image as PILImage
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

from ..models import Image
from .validate import load_pixels

Window = tuple[float, float]

# Sent by the DICOM import (``trial.dicom.importer``) for each new image, inside its
# transaction, once the viewer's files are made: ``image`` (saved file, ``sha256`` known, its
# ``case`` set), ``ds`` (the de-identified data set, as stored) and ``pixels`` (decoded by the
# import, within its limits). Receivers write under ``derived_dir(image)`` (removed with the
# file if the import fails); an error is logged and never fails the import (the derivative is
# then made when first needed).
pixels_decoded = django.dispatch.Signal()


def display_pixels(ds: Dataset, *, window: Window | None = None,
                   pixels: np.ndarray | None = None) -> np.ndarray:
    """8-bit greyscale pixels of the first frame; ``window`` = (centre, width) overrides the file.

    Without an override: the file's VOI LUT, else its first window, else the full range of
    the modality-LUT output. ``pixels``: the data set's pixels if already decoded (e.g. by
    ``validate.load_pixels``, within the import limits).
    """
    arr = first_frame(ds, pixels)
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    center, width = first_number(ds.get("WindowCenter")), first_number(ds.get("WindowWidth"))
    if window is not None:
        scaled = _window(values, *window, function="LINEAR")
    elif ds.get("VOILUTSequence"):
        scaled = _voi_lut(values, ds.VOILUTSequence[0])
    elif center is not None and width is not None and width > 0:
        function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
        scaled = _window(values, center, width, function=function)
    else:
        scaled = _full_range(values)
    out = np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)
    return 255 - out if inverted(ds) else out


def first_frame(ds: Dataset, pixels: np.ndarray | None = None) -> np.ndarray:
    """The stored pixel values of the first frame (2-D; colour images are refused).

    ``pixels``: the data set's pixels if already decoded (an import decodes them once)."""
    arr = ds.pixel_array if pixels is None else pixels
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError("Only single-channel (monochrome) images can be displayed.")
    return arr


def inverted(ds: Dataset) -> bool:
    """Shown white-on-black reversed: MONOCHROME1, flipped again by an INVERSE presentation."""
    inverse = str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1"
    if str(ds.get("PresentationLUTShape", "") or "").upper() == "INVERSE":
        inverse = not inverse
    return inverse


def first_number(value: object) -> float | None:
    """The first value of a possibly multi-valued DS (WindowCenter/Width), or None."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _window(x: np.ndarray, center: float, width: float, *, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2: LINEAR maps centre - width/2 to 0 and centre + width/2 to 1."""
    if function == "SIGMOID":
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR_EXACT":
        return (x - center) / width + 0.5
    if width <= 1:
        return (x > center - 0.5).astype(np.float32)
    return (x - (center - 0.5)) / (width - 1.0) + 0.5


def _voi_lut(x: np.ndarray, item: Dataset) -> np.ndarray:
    """Table lookup; output depth from the data when vendors over-declare it (as DCMTK does)."""
    entries, first, declared_bits = (int(v) for v in item.LUTDescriptor)
    entries = entries or 65536
    lut = np.asarray(_lut_values(item, entries), dtype=np.float32)
    index = np.clip(np.rint(x) - first, 0, len(lut) - 1).astype(np.intp)
    bits = min(declared_bits, max(8, int(lut.max()).bit_length())) if lut.size else 8
    return lut[index] / float(2**bits - 1)


def _lut_values(item: Dataset, entries: int) -> np.ndarray:
    data = item.LUTData
    if isinstance(data, bytes):  # OW: raw little-endian words
        return np.frombuffer(data, dtype="<u2")[:entries]
    return np.asarray(data if isinstance(data, MultiValue | list) else [data])[:entries]


def _full_range(x: np.ndarray) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.zeros_like(x)
    return (x - low) / (high - low)


def derived_dir(image: Image) -> Path:
    """MEDIA_ROOT/derived/<sha256>/: everything made from one file, content-addressed."""
    return Path(settings.MEDIA_ROOT) / "derived" / image.sha256


def derived_path(image: Image, *, window: Window | None, max_size: int | None) -> Path:
    """MEDIA_ROOT/derived/<sha256>/<params>.png: content-addressed, so never stale."""
    view = f"w{window[0]:g}_{window[1]:g}" if window else "default"
    size = f"s{max_size}" if max_size else "full"
    return derived_dir(image) / f"{view}_{size}.png"


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write then rename: a concurrent reader never sees half a file. Mode 0644, as a plain
    open() under the usual umask (mkstemp's 0600 would hide the viewer's files from the
    proxy's nginx, another user, which sends them after the access check)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_png(image: Image, *, window: Window | None = None,
               max_size: int | None = None) -> Path:
    """A PNG of ``image`` (cached: a second call with the same parameters decodes nothing)."""
    target = derived_path(image, window=window, max_size=max_size)
    if target.exists():
        return target
    with image.file.open("rb") as fh:
        ds, decoded = load_pixels(fh)  # within the import limits (DicomRejected if over)
    pixels = display_pixels(ds, window=window, pixels=decoded)
    picture = PILImage.fromarray(pixels)
    if max_size and max(picture.size) > max_size:
        picture.thumbnail((max_size, max_size), PILImage.Resampling.LANCZOS)
    write_atomically(target, lambda out: picture.save(out, format="PNG"))
    return target
