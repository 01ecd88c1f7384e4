"""Small PNG thumbnails for the coordinator's pages, made from the viewer's prepared files.

A thumbnail is the image's own default window (the viewer's starting window, ``viewer-meta.json``)
applied to the viewer's uint16 pixels (``pixels-u16.gz``), inverted when the viewer inverts,
at most ``THUMB_SIZE`` pixels on its longer side. It is made on first request and kept next to
the viewer's files (MEDIA_ROOT/derived/<sha256>/, written then renamed), so it is made once.

Never from the DICOM file: a web request does not decode DICOM (``viewer_pixels``). An image
whose viewer files are missing has no thumbnail: ``ThumbnailNotPrepared`` (the page says "not
prepared"; ``manage.py prepare_images`` or a worker makes the files).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from ..errors import Conflict
from ..models import Image
from .render import derived_dir, write_atomically
from .viewer_pixels import FORMAT_VERSION, META_NAME, PIXELS_NAME

THUMB_SIZE = 256
THUMB_NAME = f"thumb-{THUMB_SIZE}-v{FORMAT_VERSION}.png"


class ThumbnailNotPrepared(Conflict):
    """The image's viewer files do not exist (or are unreadable): no thumbnail, no decoding."""


def _meta(image: Image) -> dict[str, Any] | None:
    try:
        meta = json.loads((derived_dir(image) / META_NAME).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("version") == FORMAT_VERSION else None


def is_prepared(image: Image) -> bool:
    """Has the image its viewer files (so a thumbnail can be made without decoding DICOM)?"""
    folder = derived_dir(image)
    return (folder / THUMB_NAME).exists() or (
        (folder / META_NAME).exists() and (folder / PIXELS_NAME).exists())


def thumbnail_size(image: Image) -> tuple[int, int]:
    """(width, height) of the thumbnail, from the image's stored size (for the <img> tag)."""
    columns, rows = max(1, image.columns), max(1, image.rows)
    scale = min(1.0, THUMB_SIZE / max(columns, rows))
    return max(1, round(columns * scale)), max(1, round(rows * scale))


def _pixels(path: Path, rows: int, columns: int) -> np.ndarray:
    """The viewer's uint16 pixels, inflated no further than the size the metadata says."""
    expected = rows * columns * 2
    inflater = zlib.decompressobj(31)  # gzip
    raw = inflater.decompress(path.read_bytes(), expected + 1)
    if len(raw) != expected:
        raise ThumbnailNotPrepared(f"The viewer files of image {path.parent.name[:12]} do not "
                                   "match their metadata; prepare the image again.")
    return np.frombuffer(raw, dtype="<u2").reshape(rows, columns)


def render_thumbnail(meta: dict[str, Any], u16: np.ndarray) -> PILImage.Image:
    """The 8-bit thumbnail of the viewer's pixels in the viewer's default window."""
    step = max(1, max(u16.shape) // (THUMB_SIZE * 2))  # decimate first: a few MB at most
    values = u16[::step, ::step].astype(np.float32) * float(meta["scale"]) + float(meta["offset"])
    center, width = float(meta["window"]["center"]), max(float(meta["window"]["width"]), 1e-6)
    scaled = np.clip((values - (center - width / 2)) / width, 0.0, 1.0)
    out = np.rint(scaled * 255.0).astype(np.uint8)
    if meta.get("invert"):
        out = 255 - out
    picture = PILImage.fromarray(out)
    if max(picture.size) > THUMB_SIZE:
        picture.thumbnail((THUMB_SIZE, THUMB_SIZE), PILImage.Resampling.LANCZOS)
    return picture


def thumbnail(image: Image) -> Path:
    """The PNG thumbnail of ``image`` (made once from the viewer's files, then cached)."""
    folder = derived_dir(image)
    target = folder / THUMB_NAME
    if target.exists():
        return target
    meta = _meta(image)
    pixels = folder / PIXELS_NAME
    if meta is None or not pixels.exists():
        raise ThumbnailNotPrepared("This image was not prepared for the viewer; run "
                                   "`manage.py prepare_images` to prepare it.")
    picture = render_thumbnail(meta, _pixels(pixels, int(meta["rows"]), int(meta["columns"])))
    write_atomically(target, lambda out: picture.save(out, format="PNG"))
    return target
