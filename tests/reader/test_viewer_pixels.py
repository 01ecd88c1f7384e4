"""The viewer's pixel data: exact modality values, cached, served only to those who may see it.

Every value check compares against pydicom's own ``apply_modality_lut`` on the stored file,
never against this code's output.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.sequence import Sequence
from rest_framework.authtoken.models import Token

from reader.access import viewable_image
from tests.support.dicom_files import ramp, write_dicom
from tests.support.factories import MembershipFactory, UserFactory
from tests.support.read_world import build_read_world, imported_image
from trial.dicom import viewer_pixels as viewer_pixels_module
from trial.dicom.synthetic import make_cxr
from trial.dicom.viewer_pixels import gzip_bytes, viewer_meta, viewer_pixels
from trial.models import Arm, Image, Membership, Role

pytestmark = pytest.mark.django_db


def modality_values(image: Image) -> np.ndarray:
    """The expected values, computed by pydicom alone from the stored (de-identified) file."""
    ds = pydicom.dcmread(image.file.path)
    return apply_modality_lut(ds.pixel_array, ds)


def decoded(image: Image) -> tuple[np.ndarray, dict]:
    """What the browser computes: gunzip -> uint16 -> * scale + offset."""
    meta = viewer_meta(image)
    raw = gzip.decompress(viewer_pixels(image).read_bytes())
    stored = np.frombuffer(raw, dtype="<u2").reshape(meta["rows"], meta["columns"])
    return stored.astype(np.float64) * meta["scale"] + meta["offset"], meta


def assert_exact(image: Image) -> dict:
    got, meta = decoded(image)
    expected = modality_values(image)
    assert got.shape == expected.shape == (image.rows, image.columns)
    np.testing.assert_array_equal(got, expected)
    assert (meta["min"], meta["max"]) == (expected.min(), expected.max())
    return meta


def test_plain_16_bit_unsigned_values_are_exact(tmp_path) -> None:
    image = imported_image(make_cxr(tmp_path / "a.dcm", seed=1, rows=64, columns=48))
    meta = assert_exact(image)
    assert meta["invert"] is False and meta["hu"] is False
    ds = pydicom.dcmread(image.file.path)
    assert meta["window"] == {"center": float(ds.WindowCenter), "width": float(ds.WindowWidth)}
    assert meta["window_source"] == "file window"


def test_rescale_slope_and_negative_intercept_are_exact(tmp_path) -> None:
    pixels = ramp(40, 30, top=4095)
    image = imported_image(write_dicom(tmp_path / "r.dcm", pixels, rescale=(2, -1024)))
    meta = assert_exact(image)
    assert meta["min"] == -1024 and meta["max"] == 4095 * 2 - 1024
    assert meta["window_source"] == "full range"
    assert meta["window"] == {"center": (-1024 + 7166) / 2, "width": 7166 + 1024}


def test_a_fractional_slope_keeps_every_stored_level(tmp_path) -> None:
    pixels = ramp(20, 20, top=399)
    image = imported_image(write_dicom(tmp_path / "f.dcm", pixels, rescale=(0.1, -5)))
    got, meta = decoded(image)
    np.testing.assert_allclose(got, modality_values(image), rtol=0, atol=1e-9)
    assert len(np.unique(got)) == 400  # rounding to integers would have merged levels


def test_signed_pixels_are_exact(tmp_path) -> None:
    pixels = np.linspace(-2000, 3000, 50 * 40).round().astype(np.int16).reshape(50, 40)
    image = imported_image(write_dicom(tmp_path / "s.dcm", pixels, bits_stored=16))
    assert pydicom.dcmread(image.file.path).PixelRepresentation == 1
    meta = assert_exact(image)
    assert meta["min"] == -2000 and meta["max"] == 3000


def test_signed_pixels_with_rescale_are_exact(tmp_path) -> None:
    pixels = np.linspace(-1024, 3071, 32 * 32).round().astype(np.int16).reshape(32, 32)
    image = imported_image(write_dicom(tmp_path / "h.dcm", pixels, rescale=(1, -1024),
                                       RescaleType="HU"))
    meta = assert_exact(image)
    assert meta["hu"] is True
    assert {"name": "Lung", "center": -600, "width": 1500} in [
        {k: p[k] for k in ("name", "center", "width")} for p in meta["presets"]]


def test_monochrome1_sets_the_invert_flag(tmp_path) -> None:
    image = imported_image(make_cxr(tmp_path / "m1.dcm", seed=2, rows=64, columns=48,
                              photometric="MONOCHROME1"))
    assert image.photometric == "MONOCHROME1"
    assert assert_exact(image)["invert"] is True


def test_presentation_lut_inverse_flips_the_invert_flag(tmp_path) -> None:
    pixels = ramp(16, 16)
    plain = imported_image(write_dicom(tmp_path / "i2.dcm", pixels, PresentationLUTShape="INVERSE"))
    both = imported_image(write_dicom(tmp_path / "i1.dcm", pixels, photometric="MONOCHROME1",
                                PresentationLUTShape="INVERSE"))
    assert viewer_meta(plain)["invert"] is True
    assert viewer_meta(both)["invert"] is False


def test_8_bit_values_are_exact(tmp_path) -> None:
    image = imported_image(make_cxr(tmp_path / "b8.dcm", seed=3, rows=64, columns=48, bits=8))
    assert image.bits_stored == 8
    meta = assert_exact(image)
    assert meta["levels"] <= 256


def test_a_modality_lut_sequence_is_applied(tmp_path) -> None:
    item = Dataset()
    item.LUTDescriptor = [4, 10, 16]
    item.add_new("LUTData", "US", [100, 900, 3000, 60000])
    image = imported_image(write_dicom(tmp_path / "lut.dcm",
                                 np.array([[8, 10, 11], [12, 13, 99]], dtype=np.uint16),
                                 ModalityLUTSequence=Sequence([item])))
    meta = assert_exact(image)
    assert (meta["min"], meta["max"]) == (100, 60000)


def test_a_voi_lut_is_approximated_by_a_window_over_its_input(tmp_path) -> None:
    image = imported_image(write_dicom(tmp_path / "voi.dcm", ramp(8, 8, top=255),
                                 voi_lut=(100, 8, list(range(0, 256, 4)))))
    meta = viewer_meta(image)
    assert meta["window"] == {"center": 100 + 63 / 2, "width": 64}
    assert meta["window_source"] == "file VOI LUT" and "approximated" in meta["window_note"]


def test_presets_are_ordered_keyed_and_inside_the_data(tmp_path) -> None:
    meta = viewer_meta(imported_image(make_cxr(tmp_path / "p.dcm", seed=4, rows=64, columns=48)))
    names = [p["name"] for p in meta["presets"]]
    assert names[0] == "Default" and names[-1] == "Full range" and "Lung" not in names[:1]
    assert [p["key"] for p in meta["presets"]] == [str(i) for i in range(1, len(names) + 1)]
    for preset in meta["presets"]:
        assert preset["width"] > 0
        assert meta["min"] <= preset["center"] <= meta["max"]
    full = meta["presets"][-1]
    assert (full["center"], full["width"]) == ((meta["min"] + meta["max"]) / 2,
                                               meta["max"] - meta["min"])


def test_the_metadata_is_json_and_holds_nothing_identifying(tmp_path) -> None:
    image = imported_image(make_cxr(tmp_path / "id.dcm", seed=5, rows=64, columns=48))
    meta = viewer_meta(image)
    text = json.dumps(meta)
    ds = pydicom.dcmread(image.file.path)
    for secret in (image.sop_uid, image.series_uid, str(ds.StudyInstanceUID), image.sha256,
                   image.file.name, image.case.case_id, "SYNTHETIC", ".dcm"):
        assert secret not in text
    assert set(meta) == {
        "id", "version", "rows", "columns", "format", "levels", "scale", "offset", "min",
        "max", "window", "window_source", "window_note", "invert", "hu", "presets",
        "pixels_url", "preview",
    }
    assert meta["id"] == image.pk and meta["pixels_url"] == f"/api/images/{image.pk}/pixels/"
    assert meta["preview"] is None  # 64 x 48: small enough to need no preview


def test_a_cached_image_is_not_decoded_again(tmp_path, monkeypatch) -> None:
    image = imported_image(make_cxr(tmp_path / "c.dcm", seed=6, rows=64, columns=48))
    first_path, first_meta = viewer_pixels(image), viewer_meta(image)
    first_bytes = first_path.read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("decoded the DICOM again")

    monkeypatch.setattr(pydicom, "dcmread", refuse)
    assert viewer_pixels(image) == first_path
    assert first_path.read_bytes() == first_bytes
    assert viewer_meta(image) == first_meta
    assert first_path.name == "pixels-u16.gz" and first_path.parent.name == image.sha256
    assert [p.name for p in first_path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_meta_alone_builds_the_pixels_too(tmp_path, monkeypatch) -> None:
    image = imported_image(make_cxr(tmp_path / "c.dcm", seed=7, rows=64, columns=48))
    viewer_meta(image)
    monkeypatch.setattr(pydicom, "dcmread", lambda *a, **k: pytest.fail("decoded twice"))
    assert viewer_pixels(image).exists()


# --- the endpoints ---------------------------------------------------------------------------

@pytest.fixture
def world(tmp_path, monkeypatch):
    # Previews from 32 pixels a side: the 64 x 48 images get one (32 x 24), so the preview
    # endpoint answers 200 where the pixels do (tests/reader/test_viewer_preview.py).
    monkeypatch.setattr(viewer_pixels_module, "PREVIEW_MAX_SIDE", 32)
    return build_read_world(tmp_path / "dicom", cases=2)


def pixels_url(image: Image) -> str:
    return f"/api/images/{image.pk}/pixels/"


def body(response) -> bytes:
    """The streamed file (the test client closes the response once it is read)."""
    return b"".join(response.streaming_content)


def test_pixels_are_served_gzip_with_cache_headers(client, world) -> None:
    assignment = world.assignment(Arm.AI_ASSISTED)
    image = assignment.case.images.get()
    client.force_login(assignment.reader.user)
    response = client.get(pixels_url(image))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Encoding"] == "gzip"
    assert response["Cache-Control"].startswith("private, max-age=")
    assert "Content-Disposition" not in response
    etag = response["ETag"]
    assert etag.startswith('"') and image.sha256 not in etag
    data = body(response)
    assert int(response["Content-Length"]) == len(data)
    stored = np.frombuffer(gzip.decompress(data), dtype="<u2")
    meta = viewer_meta(image)
    np.testing.assert_array_equal(
        stored.reshape(image.rows, image.columns) * meta["scale"] + meta["offset"],
        modality_values(image))

    again = client.get(pixels_url(image), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and again.content == b""
    weak = client.get(pixels_url(image), HTTP_IF_NONE_MATCH=f'"other", W/{etag}')
    assert weak.status_code == 304
    stale = client.get(pixels_url(image), HTTP_IF_NONE_MATCH='"other"')
    assert stale.status_code == 200
    body(stale)


def test_asking_for_octet_stream_is_not_refused(client, world) -> None:
    assignment = world.assignment(Arm.SCP)
    image = assignment.case.images.get()
    client.force_login(assignment.reader.user)
    response = client.get(pixels_url(image), HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200
    body(response)
    refused = client.get(f"/api/images/{image.pk}/viewer/", HTTP_ACCEPT="application/octet-stream")
    assert refused.status_code == 200


def test_token_authentication_works(client, world) -> None:
    assignment = world.assignment(Arm.SCP)
    token = Token.objects.create(user=assignment.reader.user)
    response = client.get(pixels_url(assignment.case.images.get()),
                          HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    body(response)


def test_the_viewer_endpoint_returns_the_metadata(client, world) -> None:
    assignment = world.assignment(Arm.AI_ASSISTED)
    image = assignment.case.images.get()
    client.force_login(assignment.reader.user)
    response = client.get(f"/api/images/{image.pk}/viewer/")
    assert response.status_code == 200
    assert response.json() == viewer_meta(image)


def make_member(world, role: str) -> object:
    return MembershipFactory(trial=world.trial, role=role).user


PEOPLE = {
    "assigned reader": lambda w: w.assignment(Arm.AI_ASSISTED).reader.user,
    "other arm's reader of the case": lambda w: w.readers[Arm.SCP].user,
    "reader not assigned": lambda w: make_member(w, Role.READER),
    "senior, readings not submitted": lambda w: w.senior.user,
    "coordinator": lambda w: Membership.objects.get(trial=w.trial, role=Role.COORDINATOR).user,
    "superuser": lambda w: UserFactory(is_superuser=True, is_staff=True),
    "stranger": lambda w: UserFactory(),
    "member of another trial": lambda w: MembershipFactory(role=Role.COORDINATOR).user,
    "statistician": lambda w: make_member(w, Role.STATISTICIAN),
    "rater": lambda w: make_member(w, Role.RATER),
}


@pytest.mark.parametrize(("who", "expected"), [
    ("assigned reader", 200),
    ("other arm's reader of the case", 200),
    ("reader not assigned", 403),
    ("senior, readings not submitted", 403),
    ("coordinator", 200),
    ("superuser", 200),
    ("stranger", 404),
    ("member of another trial", 404),
    ("statistician", 403),
    ("rater", 403),
    ("anonymous", 403),
])
@pytest.mark.parametrize("endpoint", ["pixels", "preview", "viewer"])
def test_who_may_get_an_image(client, world, who, expected, endpoint) -> None:
    case = world.assignment(Arm.AI_ASSISTED).case
    assert world.assignment(Arm.SCP).case == case  # both arms read every case
    image = case.images.get()
    if who != "anonymous":
        client.force_login(PEOPLE[who](world))
    response = client.get(f"/api/images/{image.pk}/{endpoint}/")
    assert response.status_code == expected
    if expected != 200:
        assert response["Content-Type"] == "application/json"
        assert "Content-Encoding" not in response
    elif endpoint in ("pixels", "preview"):
        body(response)


def test_an_unknown_image_is_404(client, world) -> None:
    client.force_login(Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user)
    missing = Image.objects.order_by("-pk").first().pk + 1000
    assert client.get(f"/api/images/{missing}/pixels/").status_code == 404
    assert client.get(f"/api/images/{missing}/preview/").status_code == 404
    assert client.get(f"/api/images/{missing}/viewer/").status_code == 404


@pytest.mark.parametrize("who", ["assigned reader", "coordinator"])
def test_the_common_answers_take_one_statement_and_load_the_whole_image(world, who) -> None:
    """The check behind every pixel request is one statement for a coordinator and an
    assigned reader, and gives the same image the ORM loads (its case only if asked for)."""
    image = world.assignment(Arm.AI_ASSISTED).case.images.get()
    user = PEOPLE[who](world)
    with CaptureQueriesContext(connection) as queries:
        found = viewable_image(user, image.pk)
    assert len(queries.captured_queries) == 1
    loaded = Image.objects.get(pk=image.pk)
    for field in Image._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(loaded, field.attname), field.name
    assert found.case == loaded.case


def test_the_304_needs_access_first(client, world) -> None:
    image = world.assignment(Arm.AI_ASSISTED).case.images.get()
    client.force_login(world.assignment(Arm.AI_ASSISTED).reader.user)
    etag = client.get(pixels_url(image))
    body(etag)
    client.force_login(make_member(world, Role.READER))
    response = client.get(pixels_url(image), HTTP_IF_NONE_MATCH=etag["ETag"])
    assert response.status_code == 403


def test_the_schema_documents_both_endpoints(client, world) -> None:
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = json.loads(response.content)["paths"]
    pixels = paths["/api/images/{id}/pixels/"]["get"]
    assert "application/octet-stream" in pixels["responses"]["200"]["content"]
    assert {"304", "403", "404"} <= set(pixels["responses"])
    viewer = paths["/api/images/{id}/viewer/"]["get"]
    assert "application/json" in viewer["responses"]["200"]["content"]


# --- the full-page viewer ----------------------------------------------------------------

def page(user, image: Image):
    from reader.image_page import image_page

    request = RequestFactory().get(f"/images/{image.pk}/")
    request.user = user
    return image_page(request, image.pk)


def test_the_image_page_embeds_the_metadata(client, world) -> None:
    image = world.cases[0].images.get()
    client.force_login(Membership.objects.get(trial=world.trial, role=Role.COORDINATOR).user)
    response = client.get(f"/images/{image.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="viewer"' in html and 'id="viewer-images"' in html
    assert "/static/reader/viewer.js" in html and "/static/reader/viewer.css" in html
    assert f"/api/images/{image.pk}/pixels/" in html
    assert image.sop_uid not in html and image.sha256 not in html


def test_the_image_page_refuses_like_the_api(world) -> None:
    image = world.cases[0].images.get()
    with pytest.raises(PermissionDenied):
        page(make_member(world, Role.READER), image)
    with pytest.raises(Http404):
        page(UserFactory(), image)
    assert page(AnonymousUser(), image).status_code == 302  # to the sign-in page


def _gzip_blocks_compressed(packed: bytes) -> bool:
    """Whether the first deflate block of a gzip member is compressed (BTYPE != 00, RFC 1951
    3.2.3), read from the header by hand: 10 fixed bytes when no optional field is set."""
    assert packed[:3] == b"\x1f\x8b\x08" and packed[3] == 0  # no FNAME/FEXTRA/FCOMMENT
    return (packed[10] >> 1) & 0b11 != 0


def test_noisy_pixels_are_stored_uncompressed_and_12_bit_ones_compressed() -> None:
    """The browser always gets gzip; whether it is worth compressing is judged by a sample."""
    rng = np.random.default_rng(7)
    # Level 1 would shrink this to 97.7 %: not worth it; stored blocks are exactly 100 %.
    noisy = rng.normal(30000, 8000, size=(1024, 1024)).clip(0, 65535).astype(np.uint16)
    twelve = (rng.normal(2000, 300, size=(1024, 1024)).clip(0, 4095)).astype(np.uint16)
    twelve[:, :200] = 0  # a collimated border
    for pixels, compressed in ((noisy, False), (twelve, True)):
        packed = gzip_bytes(pixels)
        assert gzip.decompress(packed) == pixels.astype("<u2").tobytes()
        assert _gzip_blocks_compressed(packed) is compressed
        ratio = len(packed) / pixels.nbytes
        assert (ratio < 0.9) if compressed else (1.0 <= ratio < 1.001)


def test_a_small_image_is_judged_whole() -> None:
    small = np.zeros((64, 64), dtype=np.uint16)
    packed = gzip_bytes(small)
    assert _gzip_blocks_compressed(packed) and len(packed) < 200
    assert gzip.decompress(packed) == small.tobytes()


@pytest.mark.parametrize("endpoint", ["pixels", "preview"])
def test_behind_nginx_the_file_is_handed_over_after_the_access_check(
        client, world, settings, endpoint) -> None:
    """X_ACCEL_MEDIA_PREFIX set (the compose stack): an empty answer naming the file under
    MEDIA_ROOT for nginx's internal location, with the ETag and cache headers; nothing for
    someone who may not see the image, and a 304 still answered by Django."""
    settings.X_ACCEL_MEDIA_PREFIX = "/_protected_media/"
    image = world.assignment(Arm.AI_ASSISTED).case.images.get()
    client.force_login(world.assignment(Arm.AI_ASSISTED).reader.user)
    response = client.get(f"/api/images/{image.pk}/{endpoint}/")
    assert response.status_code == 200
    assert response.content == b""
    target = response["X-Accel-Redirect"]
    assert target.startswith("/_protected_media/derived/")
    on_disk = Path(settings.MEDIA_ROOT) / target.removeprefix("/_protected_media/")
    if endpoint == "pixels":
        assert on_disk.resolve() == viewer_pixels(image).resolve()
    assert gzip.decompress(on_disk.read_bytes())  # the gzip file nginx will send as it is
    assert on_disk.stat().st_mode & 0o044 == 0o044  # readable by nginx (another user)
    assert response["ETag"].startswith('"') and response["Cache-Control"].startswith("private")
    assert "Content-Encoding" not in response  # nginx's location adds it to the file

    again = client.get(f"/api/images/{image.pk}/{endpoint}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and "X-Accel-Redirect" not in again

    client.force_login(make_member(world, Role.READER))  # not assigned to this case
    refused = client.get(f"/api/images/{image.pk}/{endpoint}/")
    assert refused.status_code == 403 and "X-Accel-Redirect" not in refused
