"""The limits behind the bomb fixes (security issue, holes 3 and 4), tested in-process with small
settings: image size from the header, bounded inflation, each compressed frame against its
header, zip limits from the central directory, members streamed one at a time, the viewer
never decoding in a request, and failed imports leaving no running job and no files.

The full-size bombs, with their peak memory measured, are in ``test_dicom_bomb``.
"""

from __future__ import annotations

import io
import shutil
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from PIL import Image as PILImage
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
)

from tests.support.dicom_files import identified_cxr, media_files, ramp, write_dicom
from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from tests.trial.test_dicom_bomb import header, pixel_data_header, zeros_deflated
from trial.dicom import importer, sources, validate
from trial.dicom.importer import import_path
from trial.dicom.jobs import start_import
from trial.dicom.render import derived_dir
from trial.dicom.sources import _declared_directory
from trial.dicom.synthetic import make_cxr
from trial.dicom.viewer_pixels import META_NAME, PIXELS_NAME, viewer_meta, viewer_pixels
from trial.models import Case, Image, ImportJob, Role
from trial.tasks import prepare_viewer, run_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(), code="H1")


@pytest.fixture
def scratch(tmp_path, monkeypatch) -> Path:
    """The import's temporary folder, so a test can see that nothing is left in it."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def run(path: Path, site) -> ImportJob:
    return import_path(path, trial=site.trial, site=site)


def reasons(job: ImportJob) -> dict[str, str]:
    return {e["file"]: e["reason"] for e in job.report if e["status"] == "rejected"}


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


def assert_nothing_stored() -> None:
    assert not Case.objects.exists() and not Image.objects.exists()
    assert all_files(django_settings.MEDIA_ROOT) == []


def refused(path: Path, site) -> str:
    job = run(path, site)
    assert (job.status, job.imported, job.rejected) == ("done", 0, 1), job.report
    assert_nothing_stored()
    return job.report[0]["reason"]


# --- the image's size, from the header ------------------------------------------------------

def test_an_image_over_the_pixel_limit_is_refused_from_its_header(
        tmp_path, site, settings, monkeypatch) -> None:
    settings.DICOM_MAX_PIXELS = 1000
    path = write_dicom(tmp_path / "big.dcm", ramp(64, 64))
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array",
                        property(lambda ds: pytest.fail("decoded an image over the limit")))
    assert refused(path, site) == (
        "image is 64 x 64 pixels (0.004096 megapixels), over the 0.001 megapixel limit")


def test_frames_count_towards_the_pixel_limit(tmp_path, site, settings) -> None:
    settings.DICOM_MAX_PIXELS = 700
    frames = np.stack([ramp(16, 16)] * 3)
    path = write_dicom(tmp_path / "frames.dcm", frames)
    assert pydicom.dcmread(path).NumberOfFrames == 3
    assert refused(path, site).startswith("image is 16 x 16 pixels x 3 frames (0.000768 mega")


def wide_file(path: Path) -> Path:
    """A 64 x 64 image of 32-bit samples (pydicom only writes 8- and 16-bit arrays)."""
    ds = pydicom.dcmread(write_dicom(path, ramp(64, 64)))
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = ramp(64, 64, top=70000, dtype=np.uint32).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_the_decoded_bytes_are_limited_too(tmp_path, site, settings) -> None:
    settings.DICOM_MAX_PIXELS = 64 * 64  # 8192 bytes: 64 x 64 of 16 bits, not of 32
    assert refused(wide_file(tmp_path / "wide.dcm"), site) == (
        "image is 64 x 64 pixels of 32 bits (16384 bytes decoded), over the 8192 bytes limit "
        "(0.004096 megapixels of 16 bits)")
    assert run(write_dicom(tmp_path / "ok.dcm", ramp(64, 64)), site).imported == 1


def test_the_decoded_size_is_checked_after_decoding(tmp_path, site, monkeypatch) -> None:
    real = validate._decode
    monkeypatch.setattr(validate, "_decode",
                        lambda ds: np.concatenate([real(ds)] * 2))  # a decoder that overran
    reason = refused(write_dicom(tmp_path / "a.dcm", ramp(8, 8)), site)
    assert reason == "pixel data decoded to 256 bytes, more than the header's 8 x 8 pixels"


def test_missing_rows_are_refused_before_decoding(tmp_path, site) -> None:
    path = write_dicom(tmp_path / "norows.dcm", ramp(8, 8))
    ds = pydicom.dcmread(path)
    del ds.Rows
    ds.save_as(path, enforce_file_format=True)
    assert refused(path, site) == "missing or invalid Rows"


# --- deflated data sets: inflated in bounded steps ------------------------------------------

def deflated_copy(source: Path, target: Path) -> Path:
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(target, enforce_file_format=True)
    return target


def deflated_file(path: Path, *, before_pixels: int = 0, after_pixels: int = 0) -> Path:
    """An 8 x 8 deflated image, with ``before_pixels``/``after_pixels`` zero bytes in private
    and trailing-padding elements: a header or a tail that inflates far beyond the image."""
    meta, body = header(DeflatedExplicitVRLittleEndian, rows=8, columns=8)
    private = struct.pack("<HH2sHL", 0x0029, 0x1010, b"OB", 0, before_pixels)
    padding = struct.pack("<HH2sHL", 0xFFFC, 0xFFFC, b"OB", 0, after_pixels)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = 1024 * 1024
    piece, end = zeros_deflated(chunk)
    with path.open("wb") as out:
        out.write(meta)  # (0029,1010) sorts after the body's group 0028, before the pixels
        out.write(packer.compress(body + private) + packer.flush(zlib.Z_FULL_FLUSH))
        for _ in range(before_pixels // chunk):
            out.write(piece)
        tail = pixel_data_header(64) + bytes(range(64)) + padding
        out.write(packer.compress(tail) + packer.flush(zlib.Z_FULL_FLUSH))
        for _ in range(after_pixels // chunk):
            out.write(piece)
        out.write(end)
    return path


def test_a_deflated_file_imports_and_shows_exactly_its_pixels(tmp_path, site) -> None:
    plain = make_cxr(tmp_path / "plain.dcm", seed=3, rows=64, columns=48)
    job = run(deflated_copy(plain, tmp_path / "deflated.dcm"), site)
    assert job.imported == 1, job.report
    image = Image.objects.get()
    assert image.transfer_syntax == DeflatedExplicitVRLittleEndian
    stored = pydicom.dcmread(image.file.path)  # pydicom's own reader, for the expected values
    np.testing.assert_array_equal(stored.pixel_array, pydicom.dcmread(plain).pixel_array)
    meta = viewer_meta(image)
    assert (meta["rows"], meta["columns"]) == (64, 48)


def test_a_deflated_header_is_inflated_only_up_to_its_cap(tmp_path, site, monkeypatch) -> None:
    monkeypatch.setattr(validate, "HEADER_MAX_BYTES", 1024 * 1024)
    path = deflated_file(tmp_path / "fat-header.dcm", before_pixels=8 * 1024 * 1024)
    assert path.stat().st_size < 64 * 1024
    assert refused(path, site) == "deflated data set inflates to more than 1 MB"


def test_a_deflated_tail_past_the_pixels_is_inflated_only_up_to_the_budget(
        tmp_path, site, settings, monkeypatch) -> None:
    monkeypatch.setattr(validate, "HEADER_MAX_BYTES", 1024 * 1024)
    settings.DICOM_MAX_PIXELS = 1024 * 1024  # budget 2 MB: header cap + budget = 3 MB
    path = deflated_file(tmp_path / "fat-tail.dcm", after_pixels=16 * 1024 * 1024)
    assert refused(path, site) == "deflated data set inflates to more than 3 MB"
    small = deflated_file(tmp_path / "small.dcm")
    assert validate.validate_file(small, allowed_modalities=["DX"]).pixels.shape == (8, 8)


def test_a_deflated_pixel_element_longer_than_the_budget_is_refused_unread(
        tmp_path, site, settings) -> None:
    settings.DICOM_MAX_PIXELS = 1000
    meta, body = header(DeflatedExplicitVRLittleEndian, rows=8, columns=8)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path = tmp_path / "long.dcm"
    path.write_bytes(meta + packer.compress(body + pixel_data_header(50_000_000))
                     + packer.flush())
    assert refused(path, site) == "pixel data is 47 MB, over the 2000 bytes limit"


# --- compressed frames: checked against the header before decoding --------------------------

def rle_file(path: Path, *, rows: int, columns: int, runs: int) -> Path:
    """8-bit RLE whose one segment is ``runs`` runs of 128 zeros (rows x columns declared)."""
    ds = pydicom.dcmread(write_dicom(path, np.zeros((rows, columns), dtype=np.uint8)))
    frame = struct.pack("<16L", 1, 64, *[0] * 14) + b"\x81\x00" * runs
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.save_as(path, enforce_file_format=True)
    return path


def test_an_rle_segment_decoding_past_its_plane_is_refused_unexpanded(
        tmp_path, site, monkeypatch) -> None:
    from pydicom.pixels.decoders import rle

    monkeypatch.setattr(rle, "_rle_decode_segment",
                        lambda *a: pytest.fail("decoded an RLE segment over its size"))
    path = rle_file(tmp_path / "lying.dcm", rows=16, columns=16, runs=500_000)  # 64 MB
    assert refused(path, site) == (
        "the frame: RLE segment 1 decodes to more than the 256 bytes of a 16 x 16 image")


def test_an_honest_rle_file_still_imports(tmp_path, site) -> None:
    assert run(rle_file(tmp_path / "ok.dcm", rows=16, columns=16, runs=2), site).imported == 1
    stored = pydicom.dcmread(Image.objects.get().file.path)
    assert stored.pixel_array.shape == (16, 16) and not stored.pixel_array.any()


def test_a_jpeg_2000_frame_larger_than_its_header_is_refused(tmp_path, site) -> None:
    path = make_cxr(tmp_path / "j2k.dcm", seed=5, rows=64, columns=48,
                    transfer_syntax=JPEG2000Lossless)
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 32, 24
    ds.save_as(path, enforce_file_format=True)
    assert refused(path, site) == (
        "the frame: JPEG 2000 data is 64 x 48 pixels of 1 samples, the header says 32 x 24 of 1")


def jpeg_file(path: Path, *, rows: int, columns: int, declared: tuple[int, int]) -> Path:
    buffer = io.BytesIO()
    PILImage.fromarray(ramp(rows, columns, top=255, dtype=np.uint8)).save(buffer, format="JPEG")
    ds = pydicom.dcmread(write_dicom(path, np.zeros(declared, dtype=np.uint8)))
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_jpeg_frame_is_checked_against_its_header(tmp_path, site) -> None:
    lying = jpeg_file(tmp_path / "lying.dcm", rows=64, columns=64, declared=(16, 16))
    assert refused(lying, site) == (
        "the frame: JPEG data is 64 x 64 pixels of 1 samples, the header says 16 x 16 of 1")
    honest = jpeg_file(tmp_path / "honest.dcm", rows=16, columns=16, declared=(16, 16))
    assert run(honest, site).imported == 1


# --- zips: limits from the central directory, members streamed one at a time ---------------

def zip_of(path: Path, members: dict[str, bytes | Path],
           compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in members.items():
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return path


def cxrs(tmp_path: Path, n: int) -> dict[str, Path]:
    return {f"batch/{i}.dcm": identified_cxr(tmp_path / f"src{i}.dcm", seed=i)[0]
            for i in range(1, n + 1)}


def test_a_zip_over_the_member_limit_is_refused_whole(tmp_path, site, settings,
                                                      scratch) -> None:
    settings.DICOM_ZIP_MAX_MEMBERS = 2
    job = run(zip_of(tmp_path / "batch.zip", cxrs(tmp_path, 3)), site)
    assert (job.total, job.imported, job.rejected) == (1, 0, 1)
    assert reasons(job) == {
        "batch.zip": "zip refused: it holds 3 files, over the 2 file limit; nothing was extracted"}
    assert_nothing_stored()
    assert all_files(scratch) == []


def test_a_zip_over_the_total_size_limit_is_refused_whole(tmp_path, site, settings) -> None:
    settings.DICOM_ZIP_MAX_TOTAL_MB = 1
    noise = np.random.default_rng(1).bytes(700 * 1024)
    path = zip_of(tmp_path / "big.zip", {"a.dcm": noise, "b.dcm": noise}, zipfile.ZIP_STORED)
    assert refused(path, site) == ("zip refused: its files would expand to 1.4 MB, over the 1 "
                                   "MB limit; nothing was extracted")


def test_a_member_over_the_ratio_limit_refuses_the_zip(tmp_path, site, settings) -> None:
    settings.DICOM_ZIP_MAX_RATIO = 50
    members = {**cxrs(tmp_path, 2), "zeros.dcm": bytes(4 * 1024 * 1024)}
    reason = refused(zip_of(tmp_path / "batch.zip", members), site)
    assert reason.startswith("zip refused: zeros.dcm would expand ")
    assert reason.endswith("-fold, over the 50-fold limit; nothing was extracted")


def overlapping_zip(path: Path, *, members: int, size: int) -> Path:
    """Every central directory entry points at the same compressed data (Fifield's trick)."""
    data = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    packed = data.compress(bytes(size)) + data.flush()
    crc = zlib.crc32(bytes(size))
    name = b"zeros.dcm"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(packed), size,
                        len(name), 0) + name + packed
    entries = b"".join(
        struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(packed),
                    size, len(n), 0, 0, 0, 0, 0, 0) + n
        for n in (f"{i}.dcm".encode() for i in range(members)))
    path.write_bytes(local + entries + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members,
                                                    members, len(entries), len(local), 0))
    return path


def test_members_sharing_their_data_are_refused_by_the_whole_zip_ratio(
        tmp_path, site, settings) -> None:
    settings.DICOM_ZIP_MAX_RATIO = 2000  # each member alone (about 1000-fold) passes
    path = overlapping_zip(tmp_path / "overlap.zip", members=50, size=2 * 1024 * 1024)
    reason = refused(path, site)
    assert reason.startswith("zip refused: its files would expand ")
    assert "-fold, over the 2000-fold limit" in reason


def test_a_zip64_end_record_is_read_before_the_directory(tmp_path, site, settings,
                                                         monkeypatch) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:  # over 65535 entries: a zip64 end record
        for n in range(65536):
            archive.writestr(str(n), b"")
    assert _declared_directory(path)[0] == 65536
    monkeypatch.setattr(sources.zipfile, "ZipFile",
                        lambda *a, **k: pytest.fail("read the central directory"))
    assert refused(path, site) == ("zip refused: it holds 65536 files, over the 10000 file "
                                   "limit; nothing was extracted")


def test_zip_members_are_extracted_one_at_a_time_and_deleted(tmp_path, site, scratch,
                                                             monkeypatch) -> None:
    seen: list[list[str]] = []
    real = importer.import_file

    def spy(source, **kwargs):
        seen.append(sorted(p.name for p in source.path.parent.iterdir()))
        return real(source, **kwargs)

    monkeypatch.setattr(importer, "import_file", spy)
    job = run(zip_of(tmp_path / "batch.zip", cxrs(tmp_path, 3)), site)
    assert (job.total, job.imported) == (3, 3)
    assert [len(names) for names in seen] == [1, 1, 1]  # only the member being imported
    assert len({names[0] for names in seen}) == 3
    assert all_files(scratch) == []


# --- the viewer: made at import, never decoded in a request ---------------------------------

def no_decoding(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("decoded a DICOM file")

    monkeypatch.setattr(pydicom, "dcmread", refuse)
    monkeypatch.setattr(validate, "read_dicom", refuse)
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(refuse))


@pytest.fixture
def viewed(tmp_path, site, client) -> Image:
    """An imported image and a signed-in coordinator (who may view it)."""
    user = UserFactory()
    MembershipFactory(trial=site.trial, user=user, role=Role.COORDINATOR, site=site)
    client.force_login(user)
    job = run(make_cxr(tmp_path / "a.dcm", seed=9, rows=64, columns=48), site)
    assert job.imported == 1, job.report
    return Image.objects.get()


def test_the_import_makes_the_viewer_files_so_a_request_decodes_nothing(
        viewed, client, monkeypatch) -> None:
    folder = derived_dir(viewed)
    # (with the AI model's PNG, made from the same decoded pixels: tests/drafting/test_ahead.py)
    assert {PIXELS_NAME, META_NAME} <= {p.name for p in folder.iterdir()}
    no_decoding(monkeypatch)
    response = client.get(f"/api/images/{viewed.pk}/pixels/")
    assert response.status_code == 200
    assert len(b"".join(response.streaming_content)) == folder.joinpath(PIXELS_NAME).stat().st_size
    assert client.get(f"/api/images/{viewed.pk}/viewer/").json()["rows"] == 64


def test_an_image_not_decoded_at_import_is_refused_not_decoded(viewed, client,
                                                               monkeypatch) -> None:
    shutil.rmtree(derived_dir(viewed))  # as for an image imported before this fix
    no_decoding(monkeypatch)
    for endpoint in ("pixels", "viewer"):
        response = client.get(f"/api/images/{viewed.pk}/{endpoint}/")
        assert response.status_code == 409, endpoint
        assert "not prepared for the viewer" in response.json()["detail"]
    assert not derived_dir(viewed).exists()


def test_with_a_worker_the_request_queues_the_preparation(viewed, client, monkeypatch) -> None:
    shutil.rmtree(derived_dir(viewed))
    queued = []
    monkeypatch.setitem(prepare_viewer.app.conf, "task_always_eager", False)
    monkeypatch.setattr(prepare_viewer, "delay", lambda pk: queued.append(pk))
    response = client.get(f"/api/images/{viewed.pk}/pixels/")
    assert response.status_code == 409 and "being prepared" in response.json()["detail"]
    assert queued == [viewed.pk]


def test_the_worker_task_remakes_the_files_within_the_limits(viewed, client, settings) -> None:
    original = derived_dir(viewed).joinpath(PIXELS_NAME).read_bytes()
    shutil.rmtree(derived_dir(viewed))
    settings.DICOM_MAX_PIXELS = 1000  # the stored image (64 x 48) is now over the limit
    result = prepare_viewer(viewed.pk)
    assert result["status"] == "refused" and "over the 0.001 megapixel limit" in result["reason"]
    assert not derived_dir(viewed).exists()
    settings.DICOM_MAX_PIXELS = 60_000_000
    assert prepare_viewer(viewed.pk)["status"] == "prepared"
    assert viewer_pixels(viewed).read_bytes() == original
    assert client.get(f"/api/images/{viewed.pk}/pixels/").status_code == 200


def test_importing_the_file_again_makes_missing_viewer_files(viewed, tmp_path, site) -> None:
    shutil.rmtree(derived_dir(viewed))
    job = run(tmp_path / "a.dcm", site)
    assert (job.imported, job.duplicates) == (0, 1)
    assert viewer_meta(viewed)["rows"] == 64


# --- a failed import: no job left running, no files left behind -----------------------------

def interrupted(*args, **kwargs):
    raise KeyboardInterrupt  # Ctrl-C, or a worker's warm shutdown cut short


def test_an_interrupted_import_is_marked_failed_and_leaves_no_files(
        tmp_path, site, scratch, monkeypatch) -> None:
    monkeypatch.setattr(importer, "validate_file", interrupted)
    job = ImportJob.objects.create(trial=site.trial, site=site, source="batch.zip")
    with pytest.raises(KeyboardInterrupt):
        import_path(zip_of(tmp_path / "batch.zip", cxrs(tmp_path, 2)), trial=site.trial,
                    site=site, job=job)
    job.refresh_from_db()
    assert (job.status, job.error, job.finished_at is not None) == (
        "failed", "KeyboardInterrupt", True)
    assert_nothing_stored()
    assert all_files(scratch) == []


def test_an_interrupted_command_says_so_and_leaves_the_job_failed(
        tmp_path, site, scratch, monkeypatch) -> None:
    monkeypatch.setattr(importer, "validate_file", interrupted)
    with pytest.raises(CommandError, match="Interrupted: the import job is marked failed"):
        call_command("import_dicom", str(zip_of(tmp_path / "b.zip", cxrs(tmp_path, 2))),
                     trial=site.trial.slug, site="H1", stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert ImportJob.objects.get().status == "failed"
    assert_nothing_stored()
    assert all_files(scratch) == []


def test_a_failure_after_the_viewer_files_were_written_removes_them(
        tmp_path, site, monkeypatch) -> None:
    def broken_audit(**kwargs):
        if kwargs["action"] == "image.imported":
            raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(importer, "record", broken_audit)
    job = run(identified_cxr(tmp_path / "a.dcm")[0], site)
    assert reasons(job) == {"a.dcm": "import failed: audit log unavailable"}
    assert_nothing_stored()  # neither the DICOM nor its viewer files


def test_a_task_whose_import_fails_leaves_no_running_job_and_no_upload(
        tmp_path, site, settings, scratch, monkeypatch) -> None:
    folder = settings.MEDIA_ROOT / "incoming" / "up"
    folder.mkdir(parents=True)
    zip_of(folder / "batch.zip", cxrs(tmp_path, 2))

    def failing(job, entry):
        raise RuntimeError("database went away")

    monkeypatch.setattr(importer, "_count", failing)
    job = ImportJob.objects.create(trial=site.trial, site=site, source=str(folder))
    result = run_import(job.pk)
    job.refresh_from_db()
    assert (result["status"], job.status, job.error) == ("failed", "failed",
                                                         "database went away")
    assert not folder.exists() and all_files(scratch) == []
    assert [p.name for p in media_files(settings.MEDIA_ROOT)] == [  # the one committed image
        Path(Image.objects.get().file.name).name]


def test_a_finished_job_run_again_deletes_an_upload_left_behind(site, settings) -> None:
    folder = settings.MEDIA_ROOT / "incoming" / "left"
    folder.mkdir(parents=True)
    (folder / "a.dcm").write_bytes(b"raw")
    job = ImportJob.objects.create(trial=site.trial, site=site, source=str(folder),
                                   status=ImportJob.Status.DONE)
    assert run_import(job.pk)["status"] == "done"
    assert not folder.exists()


class BrokenUpload(SimpleUploadedFile):
    def chunks(self, chunk_size=None):
        yield b"first part"
        raise OSError("connection reset")


def test_an_upload_that_fails_while_saving_leaves_no_folder_and_no_job(site, settings) -> None:
    with pytest.raises(OSError, match="connection reset"):
        start_import([SimpleUploadedFile("a.dcm", b"x"), BrokenUpload("b.dcm", b"")],
                     trial=site.trial, site=site, by=None)
    assert not ImportJob.objects.exists()
    assert list((settings.MEDIA_ROOT / "incoming").iterdir()) == []
