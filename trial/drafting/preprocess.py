"""The image the model sees: the reference model's preprocessing (``PROTOCOL.md``).

Rendered with the DICOM's own window (``trial.dicom.render``), long side scaled to ``size``,
short side padded with grey ``pad`` to a square, RGB PNG.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image as PILImage

from ..dicom.render import display_pixels
from ..models import Image


def letterbox(pixels: np.ndarray, *, size: int = 384, pad: int = 127) -> PILImage.Image:
    """Scale an 8-bit greyscale array so its long side is ``size``; centre it on grey ``pad``."""
    picture = PILImage.fromarray(pixels).convert("RGB")
    height, width = pixels.shape[:2]
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    picture = picture.resize((new_w, new_h), PILImage.Resampling.BICUBIC)
    canvas = PILImage.new("RGB", (size, size), (pad, pad, pad))
    canvas.paste(picture, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def model_png(image: Image, *, size: int = 384, pad: int = 127) -> bytes:
    """PNG bytes of ``image`` prepared for the model."""
    with image.file.open("rb") as fh:
        pixels = display_pixels(pydicom.dcmread(fh))
    return png_bytes(letterbox(pixels, size=size, pad=pad))


def png_bytes(picture: PILImage.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
