"""Decompression bombs (security issue, holes 3 and 4), imported in a real child process whose
peak memory is measured.

Each bomb is made by the test: a deflated file and an RLE file each declaring 60000 x 60000
pixels, and a zip of 12 members of 190 MB of zeros. Before the fix they drove the importer
(command or admin upload) to many GB; now each is refused from its header or the zip's central
directory. The child runs under an address-space cap, so a regression fails with a
MemoryError instead of eating the machine, and its peak RSS comes from ``os.wait4``.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    RLELossless,
    generate_uid,
)

from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial.models import Case, Image, ImportJob, Role

pytestmark = pytest.mark.django_db(transaction=True)  # the child process must see the trial

ROOT = Path(__file__).resolve().parents[2]
SIDE = 60000  # rows and columns every DICOM bomb declares
PEAK_LIMIT_MB = 500
ADDRESS_SPACE_CAP = 3 * 1024**3  # the child's guard: far above the limit, far below a bomb
ZIP_MEMBERS, ZIP_MEMBER_MB = 12, 190

# Runs ``import_dicom`` (or an admin upload through Django's test client) in this child, then
# writes what it wrote to files (/proc/self/io wchar) next to the output.
CHILD = r"""
import json, os, sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django

django.setup()

def written():
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["wchar"])

def peak_kb():
    # VmHWM is this process's own high-water mark since exec (wait4's ru_maxrss also counts
    # the parent's memory at fork: a large test process would look like a large import).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1

mode, args = sys.argv[1], sys.argv[2:]
try:
    if mode == "command":
        from django.core.management import call_command

        path, slug, code = args
        call_command("import_dicom", path, trial=slug, site=code)
    else:
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import reverse

        from django.conf import settings

        setup_test_environment()
        settings.TWO_FACTOR_ENFORCED = False  # as in the suite: the upload, not the sign-in
        path, username, trial_pk, site_pk = args
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        with open(path, "rb") as upload:
            response = client.post(reverse("admin:trial_import", args=[trial_pk]),
                                   {"site": site_pk, "files": [upload]})
        print("HTTP", response.status_code)
finally:
    Path(os.environ["MEASURE_OUT"]).write_text(json.dumps({"wchar": written(),
                                                           "hwm_kb": peak_kb()}))
"""


# --- making the bombs --------------------------------------------------------------------

def header(syntax: str, *, rows: int = SIDE, columns: int = SIDE) -> tuple[bytes, bytes]:
    """(preamble + file meta, the data set up to the pixel data) of an 8-bit DX image."""
    ds = Dataset()
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = (
        generate_uid(), generate_uid(), generate_uid())
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "Bomb^Test", "BOMB-1"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    head = DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    return head.getvalue(), body.getvalue()


def pixel_data_header(length: int) -> bytes:
    """(7FE0,0010) OB with ``length`` (0xFFFFFFFF: encapsulated), explicit VR little endian."""
    return struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, length)


def zeros_deflated(chunk: int) -> tuple[bytes, bytes]:
    """(raw deflate of ``chunk`` zero bytes after a full flush, the final block).

    After a full flush the compressor forgets its history, so every such piece is the same
    bytes: repeating it makes gigabytes of deflated zeros in a moment."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = packer.compress(bytes(chunk)) + packer.flush(zlib.Z_FULL_FLUSH)
    return piece, packer.flush()


def deflated_bomb(path: Path) -> Path:
    """Deflated Explicit VR Little Endian: 60000 x 60000 zero pixels in about 3.5 MB."""
    meta, body = header(DeflatedExplicitVRLittleEndian)
    length, chunk = SIDE * SIDE, 18_000_000
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = packer.compress(body + pixel_data_header(length)) + packer.flush(zlib.Z_FULL_FLUSH)
    piece, end = zeros_deflated(chunk)
    with path.open("wb") as out:
        out.write(meta + start)
        for _ in range(length // chunk):
            out.write(piece)
        out.write(end)
    return path


def rle_bomb(path: Path) -> Path:
    """RLE Lossless: one frame, one segment of 2-byte runs of 128 zeros (about 56 MB)."""
    meta, body = header(RLELossless)
    runs = SIDE * SIDE // 128
    fragment = 64 + 2 * runs
    item = struct.Struct("<HHL")
    with path.open("wb") as out:
        out.write(meta + body + pixel_data_header(0xFFFFFFFF))
        out.write(item.pack(0xFFFE, 0xE000, 0))  # empty basic offset table
        out.write(item.pack(0xFFFE, 0xE000, fragment))
        out.write(struct.pack("<16L", 1, 64, *[0] * 14))  # RLE header: one segment at 64
        block = b"\x81\x00" * 1_000_000  # 0x81: repeat the next byte 128 times
        for _ in range(runs // 1_000_000):
            out.write(block)
        out.write(b"\x81\x00" * (runs % 1_000_000))
        out.write(item.pack(0xFFFE, 0xE0DD, 0))
    return path


def zip_bomb(path: Path, *, members: int = ZIP_MEMBERS, member_mb: int = ZIP_MEMBER_MB) -> Path:
    """A zip of ``members`` x ``member_mb`` MB of zeros (about 2.3 MB), written by hand."""
    chunk = 10 * 1024 * 1024
    size = member_mb * 1024 * 1024
    piece, end = zeros_deflated(chunk)
    data = piece * (size // chunk) + end
    crc = 0
    for _ in range(size // chunk):
        crc = zlib.crc32(bytes(chunk), crc)
    central = []
    with path.open("wb") as out:
        for n in range(1, members + 1):
            name = f"scan{n:02d}.dcm".encode()
            offset = out.tell()
            # local header: deflated (8), 1980-01-01 (0x21), sizes known, no extra field
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc,
                                  len(data), size, len(name), 0) + name + data)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0,
                                       0x21, crc, len(data), size, len(name), 0, 0, 0, 0, 0,
                                       offset) + name)
        directory = b"".join(central)
        start = out.tell()
        out.write(directory)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, members, members,
                              len(directory), start, 0))
    return path


# --- running an import in a measured child -----------------------------------------------

def database_url() -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def measured(mode: str, *args: str, work: Path) -> dict:
    """Run the child; its exit code, output, peak RSS (MB, its own VmHWM; wait4's as a fallback
    when it died before reporting) and bytes written."""
    scratch = work / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    out_path, err_path, stats = work / "child.out", work / "child.err", work / "child.json"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=database_url(),
               MEDIA_ROOT=str(django_settings.MEDIA_ROOT), DATA_DIR=str(work / "data"),
               TMPDIR=str(scratch), MEASURE_OUT=str(stats), SECRET_KEY="bomb-test")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))

    with out_path.open("wb") as out, err_path.open("wb") as err:
        child = subprocess.Popen([sys.executable, "-c", CHILD, mode, *args], cwd=ROOT, env=env,
                                 stdout=out, stderr=err, preexec_fn=cap)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    reported = json.loads(stats.read_text()) if stats.exists() else {}
    result = {
        "code": child.returncode,
        "out": out_path.read_text(errors="replace"),
        "err": err_path.read_text(errors="replace"),
        "peak_mb": (reported.get("hwm_kb") or usage.ru_maxrss) / 1024,  # kilobytes on Linux
        "written_mb": reported["wchar"] / 2**20 if "wchar" in reported else -1,
        "scratch_left": sorted(p.name for p in scratch.iterdir()),
    }
    print(f"\n{mode} {Path(args[0]).name}: peak {result['peak_mb']:.0f} MB RSS, "
          f"wrote {result['written_mb']:.1f} MB")
    return result


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).exists() else []


def assert_refused_and_clean(result: dict, reason: str) -> ImportJob:
    assert result["code"] == 0, result["err"][-3000:]
    assert result["peak_mb"] < PEAK_LIMIT_MB, result
    job = ImportJob.objects.get()
    assert (job.status, job.total, job.imported, job.rejected) == ("done", 1, 0, 1), job.report
    assert reason in job.report[0]["reason"], job.report
    assert job.finished_at is not None and job.error == ""
    assert not Case.objects.exists() and not Image.objects.exists()
    assert files_under(django_settings.MEDIA_ROOT) == []  # no stored, derived or raw files
    assert result["scratch_left"] == []  # and no scratch files
    return job


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(slug="bombs"), code="H1")


PIXELS_REASON = f"image is {SIDE} x {SIDE} pixels"


def test_a_deflated_bomb_is_refused_from_its_header_by_the_command(site, tmp_path) -> None:
    bomb = deflated_bomb(tmp_path / "deflated.dcm")
    assert bomb.stat().st_size < 4 * 1024 * 1024
    result = measured("command", str(bomb), "bombs", "H1", work=tmp_path / "run")
    assert_refused_and_clean(result, PIXELS_REASON)
    assert "over the 60 megapixel limit" in result["out"]


def test_a_deflated_bomb_uploaded_in_the_admin_is_refused_in_the_web_process(
        site, tmp_path) -> None:
    user = UserFactory(username="bomb-coordinator", is_staff=True)
    MembershipFactory(trial=site.trial, user=user, role=Role.COORDINATOR, site=site)
    bomb = deflated_bomb(tmp_path / "deflated.dcm")
    result = measured("upload", str(bomb), user.username, str(site.trial.pk), str(site.pk),
                      work=tmp_path / "run")
    assert "HTTP 302" in result["out"], result["err"][-3000:]
    assert_refused_and_clean(result, PIXELS_REASON)


def test_an_rle_bomb_is_refused_before_decoding(site, tmp_path) -> None:
    bomb = rle_bomb(tmp_path / "rle.dcm")
    assert 50 * 1024 * 1024 < bomb.stat().st_size < 60 * 1024 * 1024
    result = measured("command", str(bomb), "bombs", "H1", work=tmp_path / "run")
    assert_refused_and_clean(result, PIXELS_REASON)


def test_a_zip_of_many_large_members_is_refused_before_extracting(site, tmp_path) -> None:
    bomb = zip_bomb(tmp_path / "batch.zip")
    assert bomb.stat().st_size < 3 * 1024 * 1024
    result = measured("command", str(bomb), "bombs", "H1", work=tmp_path / "run")
    job = assert_refused_and_clean(result, "zip refused: scan01.dcm would expand")
    assert job.report[0]["file"] == "batch.zip"
    assert result["written_mb"] < 20  # nothing was extracted (the old code wrote 2.2 GB)
