"""Rendering: modality LUT, windows, VOI LUT, MONOCHROME1, bit depths, compression, cache."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.uid import JPEG2000Lossless, RLELossless

from tests.support.dicom_files import write_dicom
from tests.support.factories import SiteFactory, TrialFactory
from trial.dicom import render
from trial.dicom.importer import import_path
from trial.dicom.render import display_pixels, render_png
from trial.dicom.synthetic import make_cxr
from trial.models import Image


def row(tmp_path, values, *, override=None, dtype=np.uint16, **kwargs) -> list[int]:
    arr = np.array(values, dtype=dtype).reshape(1, -1)
    ds = pydicom.dcmread(write_dicom(tmp_path / "p.dcm", arr, **kwargs))
    return display_pixels(ds, window=override).ravel().tolist()


def test_rescale_slope_and_intercept_are_applied_before_the_window(tmp_path) -> None:
    # stored 0, 50, 100, 150 -> -100, 0, 100, 200 in modality units
    got = row(tmp_path, [0, 50, 100, 150], rescale=(2, -100), override=(50, 300))
    assert got == [0, 85, 171, 255]


def test_an_explicit_window_maps_its_edges_to_black_and_white(tmp_path) -> None:
    got = row(tmp_path, [0, 799, 800, 1000, 1200, 1201, 4095], override=(1000, 400))
    assert got == [0, 0, 0, 128, 255, 255, 255]


def test_the_file_window_is_the_default_and_an_override_wins(tmp_path) -> None:
    values = [800, 1000, 1200]
    assert row(tmp_path, values, window=(1000, 400)) == [0, 128, 255]
    assert row(tmp_path, values, window=(1000, 400), override=(1400, 400)) == [0, 0, 0]


def test_without_a_window_the_full_range_is_shown(tmp_path) -> None:
    assert row(tmp_path, [100, 600, 1100]) == [0, 128, 255]


def test_a_voi_lut_sequence_is_applied(tmp_path) -> None:
    got = row(tmp_path, [0, 1, 2, 3, 10], voi_lut=(0, 8, [0, 64, 128, 255]))
    assert got == [0, 64, 128, 255, 255]


def test_monochrome1_renders_low_values_bright(tmp_path) -> None:
    assert row(tmp_path, [0, 4095], photometric="MONOCHROME1") == [255, 0]


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([0, 128, 255], np.uint8), ([0, 32768, 65535], np.uint16), ([-1000, 0, 1000], np.int16)],
    ids=["8-bit", "16-bit", "signed"],
)
def test_bit_depths_span_the_display_range(tmp_path, values, dtype) -> None:
    assert row(tmp_path, values, dtype=dtype) == [0, 128, 255]


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, RLELossless], ids=["j2k", "rle"])
def test_a_lossless_compressed_file_renders_like_its_original(tmp_path, syntax) -> None:
    plain = make_cxr(tmp_path / "plain.dcm", seed=11, rows=80, columns=72)
    packed = make_cxr(tmp_path / "packed.dcm", seed=11, rows=80, columns=72,
                      transfer_syntax=syntax)
    expected = display_pixels(pydicom.dcmread(plain))
    assert pydicom.dcmread(packed).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(display_pixels(pydicom.dcmread(packed)), expected)
    assert expected.shape == (80, 72) and expected.dtype == np.uint8 and expected.std() > 10


@pytest.fixture
def image(tmp_path, db) -> Image:
    site = SiteFactory(trial=TrialFactory())
    import_path(make_cxr(tmp_path / "a.dcm", seed=12, rows=120, columns=100),
                trial=site.trial, site=site)
    return Image.objects.get()


def test_render_png_writes_a_cached_derivative(image, settings) -> None:
    path = render_png(image, max_size=60)
    assert path.parent == settings.MEDIA_ROOT / "derived" / image.sha256
    with PILImage.open(path) as png:
        assert png.mode == "L" and max(png.size) == 60


def test_a_second_render_returns_the_cache_without_decoding(image, monkeypatch) -> None:
    first = render_png(image, window=(2000, 1000))
    mtime = first.stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(render, "display_pixels", lambda *a, **k: calls.append(1))
    assert render_png(image, window=(2000, 1000)) == first
    assert calls == [] and first.stat().st_mtime_ns == mtime


def test_other_parameters_make_another_derivative(image) -> None:
    assert render_png(image, window=(2000, 1000)) != render_png(image)
