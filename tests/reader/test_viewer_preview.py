"""The viewer's reduced-resolution preview: made at import from the decoded pixels, each value
the rounded mean of a block of the full data (same scale and offset), served like the pixels.

The expected values come from pydicom alone (``apply_modality_lut`` on the stored file),
averaged here in floating point over NaN-padded blocks: an independent computation, never the
code's own output. Who may fetch the preview is the pixels' table
(``tests/reader/test_viewer_pixels.py::test_who_may_get_an_image``, parametrised over it).
"""

from __future__ import annotations

import gzip
import io
import json
import math

import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence

from tests.support.dicom_files import ramp, write_dicom
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.read_world import imported_image
from trial.dicom import viewer_pixels as vp
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import Image, Role

pytestmark = pytest.mark.django_db


def block_means(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each factor x factor block (narrower at the right and bottom), in float64."""
    rows, columns = values.shape
    out_rows, out_columns = math.ceil(rows / factor), math.ceil(columns / factor)
    padded = np.full((out_rows * factor, out_columns * factor), np.nan)
    padded[:rows, :columns] = values
    return np.nanmean(padded.reshape(out_rows, factor, out_columns, factor), axis=(1, 3))


def preview_of(image: Image) -> tuple[np.ndarray, dict]:
    """What the browser computes from the preview: gunzip -> uint16 -> * scale + offset."""
    meta = vp.viewer_meta(image)
    preview = meta["preview"]
    assert preview is not None
    path, _ = vp.viewer_preview(image)
    stored = np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<u2")
    stored = stored.reshape(preview["rows"], preview["columns"])
    return stored.astype(np.float64) * meta["scale"] + meta["offset"], meta


def assert_preview_is_the_block_means(image: Image) -> dict:
    ds = pydicom.dcmread(image.file.path)
    values = np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64)
    got, meta = preview_of(image)
    factor = meta["preview"]["factor"]
    assert factor == math.ceil(max(values.shape) / vp.PREVIEW_MAX_SIDE) >= 2
    assert max(got.shape) <= vp.PREVIEW_MAX_SIDE
    expected = block_means(values, factor)
    assert got.shape == expected.shape == (math.ceil(image.rows / factor),
                                           math.ceil(image.columns / factor))
    # Rounded to the nearest stored step: within half a step of the exact mean.
    step = abs(meta["scale"])
    np.testing.assert_array_less(np.abs(got - expected), step / 2 + 1e-9)
    # The corner blocks by hand (the last ones cover what is left of the image).
    for r, c in ((0, 0), (-1, -1), (0, -1), (-1, 0)):
        rs = slice(r * factor, None) if r == 0 else slice((got.shape[0] - 1) * factor, None)
        cs = slice(c * factor, None) if c == 0 else slice((got.shape[1] - 1) * factor, None)
        block = values[rs, cs][:factor, :factor]
        assert abs(got[r, c] - block.mean()) <= step / 2 + 1e-9
    return meta


@pytest.fixture
def small_previews(monkeypatch):
    """Previews from 16 pixels a side, so test images stay small (and fast)."""
    monkeypatch.setattr(vp, "PREVIEW_MAX_SIDE", 16)


def test_a_radiograph_s_preview_is_the_mean_of_its_blocks(tmp_path) -> None:
    # At the real size limit: 1301 x 1001 -> factor 3, 434 x 334, the last blocks partial.
    image = imported_image(make_cxr(tmp_path / "big.dcm", seed=11, rows=1301, columns=1001))
    meta = assert_preview_is_the_block_means(image)
    assert meta["preview"]["factor"] == 3
    assert (meta["preview"]["rows"], meta["preview"]["columns"]) == (434, 334)
    assert meta["preview"]["url"] == f"/api/images/{image.pk}/preview/"


@pytest.mark.usefixtures("small_previews")
@pytest.mark.parametrize("name", ["rescale", "fractional", "signed", "monochrome1", "8-bit",
                                  "lut"])
def test_every_kind_of_pixel_data_previews_exactly(tmp_path, name) -> None:
    path = tmp_path / f"{name}.dcm"
    if name == "rescale":
        write_dicom(path, ramp(61, 47, top=4095), rescale=(2, -1024))
    elif name == "fractional":
        write_dicom(path, ramp(50, 37, top=399), rescale=(0.1, -5))
    elif name == "signed":
        pixels = np.linspace(-2000, 3000, 53 * 41).round().astype(np.int16).reshape(53, 41)
        write_dicom(path, pixels, bits_stored=16)
    elif name == "monochrome1":
        make_cxr(path, seed=2, rows=64, columns=45, photometric="MONOCHROME1")
    elif name == "8-bit":
        make_cxr(path, seed=3, rows=33, columns=64, bits=8)
    else:
        item = Dataset()
        item.LUTDescriptor = [4, 10, 16]
        item.add_new("LUTData", "US", [100, 900, 3000, 60000])
        pixels = np.resize(np.array([10, 11, 12, 13], dtype=np.uint16), (35, 34))
        write_dicom(path, pixels, ModalityLUTSequence=Sequence([item]))
    meta = assert_preview_is_the_block_means(imported_image(path))
    if name == "monochrome1":
        assert meta["invert"] is True  # the preview is windowed and inverted like the pixels


def test_the_block_mean_rounds_half_up_without_overflow() -> None:
    # Hand-made: a 5 x 7 image by 3 -> 2 x 3 blocks, the last row and column partial.
    u16 = np.array([[0, 1, 2, 3, 4, 5, 6]] * 5, dtype=np.uint16)
    u16[3:] += 10
    expected = np.zeros((2, 3), dtype=np.uint16)
    for i in range(2):
        for j in range(3):
            block = u16[3 * i:3 * i + 3, 3 * j:3 * j + 3].astype(np.float64)
            expected[i, j] = math.floor(block.mean() + 0.5)
    np.testing.assert_array_equal(vp.downsample(u16, 3), expected)
    assert vp.downsample(np.array([[1, 2]], dtype=np.uint16), 2).tolist() == [[2]]  # 1.5 -> 2
    full = np.full((40, 40), 65535, dtype=np.uint16)  # 17 x 17 x 65535 needs 32 bits
    assert (vp.downsample(full, 17) == 65535).all()


def test_a_small_image_has_no_preview(tmp_path, client) -> None:
    image = imported_image(make_cxr(tmp_path / "s.dcm", seed=4, rows=640, columns=500))
    assert vp.viewer_meta(image)["preview"] is None
    assert vp.viewer_preview(image) is None
    assert not (vp.derived_dir(image) / vp.PREVIEW_NAME).exists()
    client.force_login(coordinator_of(image))
    response = client.get(f"/api/images/{image.pk}/preview/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


# --- the endpoint ---------------------------------------------------------------------------

def coordinator_of(image: Image):
    user = UserFactory()
    MembershipFactory(trial=image.case.trial, user=user, role=Role.COORDINATOR)
    return user


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def served(tmp_path, client, small_previews) -> Image:
    image = imported_image(make_cxr(tmp_path / "e.dcm", seed=5, rows=64, columns=48))
    client.force_login(coordinator_of(image))
    return image


def test_the_preview_is_served_gzip_with_an_etag_and_304(served, client) -> None:
    url = f"/api/images/{served.pk}/preview/"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"].startswith("private, max-age=")
    assert response["Vary"] == "Cookie, Authorization"
    assert "Content-Disposition" not in response
    data = body(response)
    assert int(response["Content-Length"]) == len(data)
    preview = vp.viewer_meta(served)["preview"]
    assert len(gzip.decompress(data)) == preview["rows"] * preview["columns"] * 2
    etag = response["ETag"]
    pixels = client.get(f"/api/images/{served.pk}/pixels/")
    body(pixels)
    assert etag.startswith('"') and served.sha256 not in etag and etag != pixels["ETag"]

    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and again.content == b""
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    stale = client.get(url, HTTP_IF_NONE_MATCH=pixels["ETag"])  # the pixels' tag is not it
    assert stale.status_code == 200
    body(stale)


def test_the_preview_s_304_needs_access_first(served, client) -> None:
    etag = client.get(f"/api/images/{served.pk}/preview/")
    body(etag)
    reader = UserFactory()
    MembershipFactory(trial=served.case.trial, user=reader, role=Role.READER)
    client.force_login(reader)
    response = client.get(f"/api/images/{served.pk}/preview/", HTTP_IF_NONE_MATCH=etag["ETag"])
    assert response.status_code == 403


def refuse_decoding(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded the DICOM file")

    monkeypatch.setattr(pydicom, "dcmread", refuse)
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(refuse))


def test_no_request_decodes_the_dicom(served, client, monkeypatch) -> None:
    refuse_decoding(monkeypatch)
    for endpoint in ("viewer", "preview", "pixels"):
        response = client.get(f"/api/images/{served.pk}/{endpoint}/")
        assert response.status_code == 200, endpoint
        if endpoint != "viewer":
            body(response)
    assert client.get(f"/images/{served.pk}/").status_code == 200


def make_it_old(image: Image) -> None:
    """As an image prepared before previews existed: no preview file, none in the metadata."""
    folder = vp.derived_dir(image)
    (folder / vp.PREVIEW_NAME).unlink()
    meta = json.loads((folder / vp.META_NAME).read_text())
    del meta["preview"]
    (folder / vp.META_NAME).write_text(json.dumps(meta))


def test_an_image_prepared_before_previews_still_works(served, client, monkeypatch) -> None:
    before = vp.viewer_meta(served)
    original = vp.viewer_preview(served)[0].read_bytes()
    make_it_old(served)
    meta = vp.viewer_meta(served)
    assert meta["preview"] is None and meta == {**before, "preview": None}
    assert client.get(f"/api/images/{served.pk}/preview/").status_code == 404
    pixels = client.get(f"/api/images/{served.pk}/pixels/")
    assert pixels.status_code == 200
    body(pixels)
    # What a worker or a re-import does: the preview is made from the stored pixel file.
    refuse_decoding(monkeypatch)
    vp.prepare(served)
    assert vp.viewer_meta(served) == before
    assert vp.viewer_preview(served)[0].read_bytes() == original


def test_importing_the_file_again_adds_the_missing_preview(tmp_path, small_previews) -> None:
    path = make_cxr(tmp_path / "again.dcm", seed=6, rows=40, columns=64)
    image = imported_image(path)
    before = vp.viewer_meta(image)
    make_it_old(image)
    job = import_path(path, trial=image.case.trial, site=image.case.site)
    assert (job.imported, job.duplicates) == (0, 1)
    assert vp.viewer_meta(image) == before


def test_a_deleted_preview_file_means_no_preview(served, client) -> None:
    (vp.derived_dir(served) / vp.PREVIEW_NAME).unlink()
    assert vp.viewer_meta(served)["preview"] is None
    assert client.get(f"/api/images/{served.pk}/preview/").status_code == 404


def test_without_viewer_files_the_preview_is_refused_not_decoded(served, client,
                                                                   monkeypatch) -> None:
    for name in (vp.META_NAME, vp.PIXELS_NAME, vp.PREVIEW_NAME):
        (vp.derived_dir(served) / name).unlink()
    refuse_decoding(monkeypatch)
    response = client.get(f"/api/images/{served.pk}/preview/")
    assert response.status_code == 409 and "not prepared" in response.json()["detail"]


def test_the_pages_and_the_schema_carry_the_preview(served, client) -> None:
    html = client.get(f"/images/{served.pk}/").content.decode()
    assert f"/api/images/{served.pk}/preview/" in html and 'class="viewer-hint"' in html
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(response.content)["paths"]
    preview = paths["/api/images/{id}/preview/"]["get"]
    assert "application/octet-stream" in preview["responses"]["200"]["content"]
    assert {"304", "403", "404"} <= set(preview["responses"])


def test_prepare_images_adds_the_missing_preview_without_decoding(served, monkeypatch) -> None:
    """After an upgrade from before previews, ``manage.py prepare_images`` (the compose
    stack's migrate service runs it) makes each missing preview from the stored pixel file."""
    before = vp.viewer_meta(served)
    make_it_old(served)
    refuse_decoding(monkeypatch)
    out = io.StringIO()
    call_command("prepare_images", stdout=out, stderr=io.StringIO())
    assert "Prepared 1 image(s)" in out.getvalue()
    assert vp.viewer_meta(served) == before
    again = io.StringIO()
    call_command("prepare_images", stdout=again, stderr=io.StringIO())
    assert "Prepared 0 image(s)" in again.getvalue()
