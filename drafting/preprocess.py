"""The image the model sees: the reference model's preprocessing (``PROTOCOL.md``).

Rendered with the DICOM's own window (``trial.dicom.render``), long side scaled to ``size``,
short side padded with grey ``pad`` to a square, RGB PNG.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image as PILImage

from trial.dicom.render import display_pixels
from trial.models import Image


def letterbox(pixels: np.ndarray, *, size: int = 384, pad: int = 127) -> PILImage.Image:
    """Scale an 8-bit greyscale array so its long side is ``size``; centre it on grey ``pad``.

    Scaled and padded in greyscale, then made RGB: the same pixels as scaling three equal
    channels, a third of the work (9 ms instead of 26 for a 2048 x 1760 image).
    """
    picture = PILImage.fromarray(pixels)
    height, width = pixels.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    picture = picture.resize((new_w, new_h), PILImage.Resampling.BICUBIC)
    canvas = PILImage.new("L", (size, size), pad)
    canvas.paste(picture, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas.convert("RGB")


def model_png(image: Image, *, size: int = 384, pad: int = 127) -> bytes:
    """PNG bytes of ``image`` prepared for the model."""
    with image.file.open("rb") as fh:
        return dataset_png(pydicom.dcmread(fh), size=size, pad=pad)


def dataset_png(ds: pydicom.Dataset, *, size: int = 384, pad: int = 127) -> bytes:
    """PNG bytes of a DICOM dataset prepared for the model (``check_model`` uses it directly)."""
    return png_bytes(letterbox(display_pixels(ds), size=size, pad=pad))


def png_bytes(picture: PILImage.Image) -> bytes:
    """Lossless PNG at zlib level 1: 6 ms instead of 22 (level 6) for 10% more bytes."""
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=1)
    return out.getvalue()
