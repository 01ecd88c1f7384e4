"""The image the model sees: the reference preprocessing (long side 384, grey 127 letterbox)."""

import io

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage

from drafting.preprocess import model_png
from tests.support.draft_world import imported_case
from tests.support.factories import SiteFactory
from trial.dicom.render import display_pixels
from trial.models import Image


@pytest.fixture
def tall_image(db, tmp_path) -> Image:
    """A synthetic radiograph 300 rows high and 200 columns wide, imported."""
    site = SiteFactory()
    case = imported_case(site.trial, site, tmp_path / "src", seed=7, rows=300, columns=200)
    return case.images.get()


def decoded(png: bytes) -> PILImage.Image:
    picture = PILImage.open(io.BytesIO(png))
    assert picture.format == "PNG"
    return picture


def file_pixels(image: Image) -> np.ndarray:
    with image.file.open("rb") as fh:
        return display_pixels(pydicom.dcmread(fh))


def test_a_tall_image_becomes_a_384_square_rgb_png(tall_image) -> None:
    picture = decoded(model_png(tall_image))
    assert (picture.mode, picture.size) == ("RGB", (384, 384))


def test_the_short_side_is_padded_with_exact_grey_127(tall_image) -> None:
    pixels = np.asarray(decoded(model_png(tall_image)))
    # 200 x 300 scaled by 384/300 is 256 x 384: 64 grey columns each side.
    assert (pixels[:, :64] == 127).all()
    assert (pixels[:, 320:] == 127).all()
    assert not (pixels[:, 64] == 127).all()  # the first image column is not padding


def test_the_centre_is_the_image_rendered_with_the_files_window(tall_image) -> None:
    pixels = np.asarray(decoded(model_png(tall_image)))
    windowed = file_pixels(tall_image)
    expected = np.asarray(
        PILImage.fromarray(windowed).convert("RGB").resize((256, 384), PILImage.Resampling.BICUBIC)
    )
    assert np.array_equal(pixels[:, 64:320], expected)
    with tall_image.file.open("rb") as fh:
        full_range = display_pixels(pydicom.dcmread(fh), window=(32768, 65536))
    assert not np.array_equal(windowed, full_range)  # so the window did matter


def test_size_and_pad_value_are_configurable(tall_image) -> None:
    pixels = np.asarray(decoded(model_png(tall_image, size=96, pad=0)))
    assert pixels.shape == (96, 96, 3)
    assert (pixels[:, :16] == 0).all() and (pixels[:, 80:] == 0).all()  # 64 x 96 centred
    assert pixels[:, 16:80].any()


def test_a_wide_image_is_padded_top_and_bottom(db, tmp_path) -> None:
    site = SiteFactory()
    case = imported_case(site.trial, site, tmp_path / "src", seed=8, rows=100, columns=200)
    pixels = np.asarray(decoded(model_png(case.images.get())))
    assert (pixels[:96] == 127).all() and (pixels[288:] == 127).all()  # 384 x 192 centred
    assert not (pixels[96] == 127).all()
