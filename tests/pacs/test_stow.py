"""STOW-RS (``POST /dicomweb/studies``): a site's system sends studies over real HTTP.

dicomweb-client (and, for bodies it cannot make, ``requests``) against Django's live server on
the suite's PostgreSQL: per-instance success, warning and failure in the PS3.18 answer, the same
import (de-identified, one case per study, duplicates stored once) under one import job per
request, and the refusals (token, sender, content type, size, locked trial). The multipart
parser's edge cases are tested on their own, without HTTP or a database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from django.conf import settings as django_settings
from django.test import Client
from pydicom.uid import generate_uid
from rest_framework.authtoken.models import Token

from pacs import stow
from pacs.models import SiteSender
from tests.support.dicom_files import identified_cxr, media_files, ramp, write_dicom
from tests.support.factories import SiteFactory, TrialFactory, UserFactory
from trial.models import Case, Image, ImportJob, Trial

LIVE = pytest.mark.django_db(transaction=True)  # the live server answers on its own connection
BOUNDARY = "stow-test-boundary"
REFERENCED, FAILED = "ReferencedSOPSequence", "FailedSOPSequence"


@dataclass
class Sender:
    site: object
    user: object
    key: str


@pytest.fixture
def sender() -> Sender:
    site = SiteFactory(trial=TrialFactory(), code="H1")
    user = UserFactory(username="h1-pacs")
    SiteSender.objects.create(site=site, user=user)
    return Sender(site=site, user=user, key=Token.objects.create(user=user).key)


def dicomweb(live_server, key: str | None) -> tuple[DICOMwebClient, list[requests.Response]]:
    """A client with the sender's token; the responses it got (for their status and headers)."""
    seen: list[requests.Response] = []
    headers = {"Authorization": f"Token {key}"} if key else {}
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb", headers=headers,
                            callback=lambda response, *args, **kwargs: seen.append(response))
    return client, seen


def study(tmp_path: Path, n: int = 2, *, uid: str | None = None, seed: int = 1):
    """``n`` identified radiographs of one study: their datasets and identifying values."""
    uid = uid or generate_uid()
    made = [identified_cxr(tmp_path / f"{uid}-{i}.dcm", seed=seed + i, study_uid=uid)
            for i in range(n)]
    return [pydicom.dcmread(path) for path, _ in made], [secrets for _, secrets in made]


def part_file(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds)
    return buffer.getvalue()


def multipart(*parts: tuple[str, bytes], boundary: str = BOUNDARY) -> bytes:
    body = b"".join(f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode() + data + b"\r\n"
                    for kind, data in parts)
    return body + f"--{boundary}--\r\n".encode()


def post(live_server, body: bytes, *, key: str | None, path: str = "studies",
         content_type: str = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
         ) -> requests.Response:
    headers = {"Content-Type": content_type, "Accept": stow.DICOM_JSON}
    if key:
        headers["Authorization"] = f"Token {key}"
    return requests.post(f"{live_server.url}/dicomweb/{path}", data=body, headers=headers,
                         timeout=30)


def sop_uids(ds: pydicom.Dataset, sequence: str) -> list[str]:
    return [item.ReferencedSOPInstanceUID for item in ds.get(sequence, [])]


def nothing_imported() -> None:
    assert not Case.objects.exists() and not Image.objects.exists()
    assert media_files(django_settings.MEDIA_ROOT) == []


@LIVE
def test_a_study_of_two_instances_is_stored_de_identified(live_server, tmp_path,
                                                          sender) -> None:
    datasets, secrets = study(tmp_path)
    client, seen = dicomweb(live_server, sender.key)
    answer = client.store_instances(datasets)
    assert seen[-1].status_code == 200
    assert seen[-1].headers["Content-Type"] == "application/dicom+json"
    assert "Warning" not in seen[-1].headers
    assert sorted(sop_uids(answer, REFERENCED)) == sorted(s["sop_uid"] for s in secrets)
    assert [item.ReferencedSOPClassUID for item in answer.ReferencedSOPSequence] == [
        ds.SOPClassUID for ds in datasets]
    assert FAILED not in answer and "RetrieveURL" not in answer

    case = Case.objects.get()
    assert (case.site, case.case_id, case.images.count()) == (sender.site, "H1-0001", 2)
    for image in case.images.all():
        stored = Path(image.file.path).read_bytes()
        for values in secrets:
            for name, value in values.items():
                assert value.encode() not in stored, f"{name} ({value}) survived"
        assert image.sop_uid not in seen[-1].text  # only the sender's own UIDs come back

    job = ImportJob.objects.get()
    assert (job.status, job.source, job.created_by) == (
        "done", "STOW-RS from h1-pacs", sender.user)
    assert (job.total, job.processed, job.imported, job.duplicates, job.rejected) == (
        2, 2, 2, 0, 0)
    assert [e["file"] for e in job.report] == ["STOW-RS part 1", "STOW-RS part 2"]
    assert {image.import_job_id for image in case.images.all()} == {job.pk}


@LIVE
def test_a_bad_instance_fails_with_its_reason_and_the_good_one_is_stored(
        live_server, tmp_path, sender) -> None:
    datasets, secrets = study(tmp_path, 1)
    mr = pydicom.dcmread(write_dicom(tmp_path / "mr.dcm", ramp(8, 8), modality="MR"))
    client, seen = dicomweb(live_server, sender.key)
    answer = client.store_instances([datasets[0], mr])
    assert seen[-1].status_code == 202
    assert sop_uids(answer, REFERENCED) == [secrets[0]["sop_uid"]]
    (failed,) = answer.FailedSOPSequence
    assert (failed.ReferencedSOPInstanceUID, failed.ReferencedSOPClassUID) == (
        mr.SOPInstanceUID, mr.SOPClassUID)
    assert failed.FailureReason == stow.SOP_CLASS_NOT_SUPPORTED
    assert seen[-1].headers["Warning"] == (
        '299 - "part 2: modality MR not allowed (allowed: CR, DX)"')
    assert Image.objects.count() == 1
    job = ImportJob.objects.get()
    assert (job.imported, job.rejected) == (1, 1)
    assert job.report[1]["reason"] == "modality MR not allowed (allowed: CR, DX)"


@LIVE
def test_parts_that_are_not_dicom_fail_and_the_others_are_stored(live_server, tmp_path,
                                                                 sender) -> None:
    datasets, secrets = study(tmp_path, 1)
    body = multipart(("application/dicom", part_file(datasets[0])),
                     ("application/dicom", b"Patient list, do not upload\n"),
                     ("image/png", b"\x89PNG\r\n\x1a\n"))
    response = post(live_server, body, key=sender.key)
    assert response.status_code == 202
    answer = pydicom.Dataset.from_json(response.json())
    assert sop_uids(answer, REFERENCED) == [secrets[0]["sop_uid"]]
    reasons = [item.FailureReason for item in answer.FailedSOPSequence]
    assert reasons == [stow.CANNOT_UNDERSTAND, stow.CANNOT_UNDERSTAND]
    assert "ReferencedSOPInstanceUID" not in answer.FailedSOPSequence[0]  # nothing to echo
    assert response.headers["Warning"] == ('299 - "part 2: not a DICOM file", '
                                           '299 - "part 3: part is image/png, not '
                                           'application/dicom"')
    job = ImportJob.objects.get()
    assert (job.total, job.imported, job.rejected) == (3, 1, 2)


@LIVE
def test_the_same_study_again_is_stored_once_and_warned(live_server, tmp_path,
                                                        sender) -> None:
    datasets, secrets = study(tmp_path)
    client, seen = dicomweb(live_server, sender.key)
    client.store_instances(datasets)
    stored = media_files(django_settings.MEDIA_ROOT)
    answer = client.store_instances(datasets)
    assert seen[-1].status_code == 202
    assert sorted(sop_uids(answer, REFERENCED)) == sorted(s["sop_uid"] for s in secrets)
    assert [item.WarningReason for item in answer.ReferencedSOPSequence] == [
        stow.DUPLICATE, stow.DUPLICATE]
    assert FAILED not in answer
    assert Image.objects.count() == 2 and Case.objects.count() == 1
    assert media_files(django_settings.MEDIA_ROOT) == stored
    again = ImportJob.objects.order_by("-pk").first()
    assert (again.imported, again.duplicates, again.rejected) == (0, 2, 0)


@LIVE
def test_an_instance_of_another_study_fails_on_the_studys_own_address(
        live_server, tmp_path, sender) -> None:
    ours, ours_secrets = study(tmp_path, 1)
    theirs, _ = study(tmp_path, 1, seed=5)
    client, seen = dicomweb(live_server, sender.key)
    answer = client.store_instances([ours[0], theirs[0]],
                                    study_instance_uid=ours[0].StudyInstanceUID)
    assert seen[-1].status_code == 202
    assert sop_uids(answer, REFERENCED) == [ours_secrets[0]["sop_uid"]]
    assert sop_uids(answer, FAILED) == [theirs[0].SOPInstanceUID]
    assert answer.FailedSOPSequence[0].FailureReason == stow.DOES_NOT_MATCH
    assert Image.objects.count() == 1
    assert ImportJob.objects.get().rejected == 1


@LIVE
def test_who_may_send(live_server, tmp_path, sender, settings) -> None:
    body = multipart(("application/dicom", part_file(study(tmp_path, 1)[0][0])))
    anonymous = post(live_server, body, key=None)
    assert (anonymous.status_code, anonymous.headers["WWW-Authenticate"]) == (401, "Token")
    assert post(live_server, body, key="not-a-token").status_code == 401
    stranger = UserFactory(username="not-a-sender", is_superuser=True)
    refused = post(live_server, body, key=Token.objects.create(user=stranger).key)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This account is not a site's DICOM sender: it cannot " \
                                       "store studies."
    session = Client()  # a signed-in person is not a sender: sessions are not accepted here
    session.force_login(sender.user)
    assert session.post("/dicomweb/studies", body, content_type=(
        f'multipart/related; type="application/dicom"; boundary={BOUNDARY}')).status_code == 401
    assert requests.get(f"{live_server.url}/dicomweb/studies", timeout=30).status_code == 405
    nothing_imported()
    assert not ImportJob.objects.exists()

    # The two-factor gate guards sessions; a token call passes it, as the API's do.
    settings.TWO_FACTOR_ENFORCED = True
    sender.user.is_superuser = True  # one who must use a second factor
    sender.user.save()
    assert post(live_server, body, key=sender.key).status_code == 200


@LIVE
def test_requests_refused_as_a_whole_import_nothing(live_server, tmp_path, sender,
                                                    settings) -> None:
    body = multipart(("application/dicom", part_file(study(tmp_path, 1)[0][0])))
    assert post(live_server, body, key=sender.key,
                content_type="application/dicom").status_code == 415
    assert post(live_server, body, key=sender.key, content_type=(
        f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}')
    ).status_code == 415
    assert post(live_server, body, key=sender.key, content_type=(
        'multipart/related; type="application/dicom"')).status_code == 400  # no boundary
    assert post(live_server, body[:-20], key=sender.key).status_code == 400  # cut short
    assert post(live_server, multipart(), key=sender.key).status_code == 400  # no instance
    assert requests.post(f"{live_server.url}/dicomweb/studies", data=body, timeout=30, headers={
        "Authorization": f"Token {sender.key}", "Accept": "application/dicom+xml",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
    }).status_code == 406

    settings.DICOM_ZIP_MAX_TOTAL_MB = 0  # every body is over the request limit
    too_large = post(live_server, body, key=sender.key)
    assert too_large.status_code == 413
    assert "over the 0 bytes limit" in too_large.json()["detail"]
    settings.DICOM_ZIP_MAX_TOTAL_MB = 1
    settings.DICOM_ZIP_MAX_MEMBERS = 1
    assert post(live_server, body.replace(f"--{BOUNDARY}--".encode(), body),
                key=sender.key).status_code == 413

    Trial.objects.filter(pk=sender.site.trial_id).update(status=Trial.Status.LOCKED)
    locked = post(live_server, body, key=sender.key)
    assert locked.status_code == 409
    assert "the trial is locked" in locked.json()["detail"]
    nothing_imported()
    assert not ImportJob.objects.exists()


@LIVE
def test_instances_over_the_file_limit_fail_and_none_is_stored(live_server, tmp_path,
                                                               sender, settings) -> None:
    settings.DICOM_MAX_FILE_MB = 0
    datasets, secrets = study(tmp_path)
    client, _ = dicomweb(live_server, sender.key)
    with pytest.raises(requests.HTTPError) as refused:
        client.store_instances(datasets)
    assert refused.value.response.status_code == 409
    answer = pydicom.Dataset.from_json(refused.value.response.json())
    assert sorted(sop_uids(answer, FAILED)) == sorted(s["sop_uid"] for s in secrets)
    assert {item.FailureReason for item in answer.FailedSOPSequence} == {
        stow.OUT_OF_RESOURCES}
    assert REFERENCED not in answer
    nothing_imported()
    assert ImportJob.objects.get().rejected == 2


@pytest.mark.django_db
def test_a_body_over_djangos_in_memory_limit_is_streamed(client, sender) -> None:
    junk = b"\0" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024)
    response = client.post(
        "/dicomweb/studies", multipart(("application/dicom", junk)),
        content_type=f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
        headers={"Authorization": f"Token {sender.key}"})
    assert response.status_code == 409  # read and refused as an instance, not as a request
    assert response.headers["Warning"] == '299 - "part 1: not a DICOM file"'


def test_a_chunked_body_is_read_only_where_the_server_decoded_it(rf) -> None:
    request = rf.post("/dicomweb/studies", b"body", content_type="application/octet-stream")
    del request.META["CONTENT_LENGTH"]
    with pytest.raises(stow.Refused) as refused:
        stow.body_of(request)
    assert refused.value.status == 411
    request.META.update({"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(b"body")})
    stream, length = stow.body_of(request)
    assert (stream.read(), length) == (b"body", None)


# --- the multipart parser, without HTTP -----------------------------------------------------

def parts_of(body: bytes, folder: Path, **limits) -> list[stow.Part]:
    folder.mkdir(exist_ok=True)
    limits = {"max_bytes": 10**6, "max_part_bytes": 10**5, "max_parts": 10, **limits}
    return stow.read_parts(io.BytesIO(body), BOUNDARY, folder, **limits)


@pytest.mark.parametrize("chunk", [1, 7, stow.CHUNK])
def test_parts_are_split_exactly_whatever_the_preamble_and_epilogue(tmp_path, monkeypatch,
                                                                      chunk) -> None:
    monkeypatch.setattr(stow, "CHUNK", chunk)  # boundaries split across reads
    near = BOUNDARY.encode()
    data = [b"a\r\n--" + near[:-1], b"", b"b--" + near + b"\r\n\r\n", b"a" * 3000]
    body = multipart(*(("application/dicom", d) for d in data))
    for framed in (body, b"preamble\r\n" + body + b"epilogue"):
        parts = parts_of(framed, tmp_path / str(len(framed)))
        assert [p.path.read_bytes() for p in parts] == data
        assert all(p.problem is None for p in parts)


def test_a_part_over_the_instance_limit_is_not_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(stow, "HEAD_BYTES", 1000)
    body = multipart(("application/dicom", b"x" * 5000), ("application/dicom", b"ok"))
    big, small = parts_of(body, tmp_path, max_part_bytes=4000)
    assert big.path.read_bytes() == b"x" * 1000 and big.size == 5000  # its head, for its UIDs
    assert big.problem == (stow.OUT_OF_RESOURCES, "file is 5000 bytes, over the 4000 bytes limit")
    assert small.path.read_bytes() == b"ok" and small.problem is None


@pytest.mark.parametrize(("body", "status"), [
    (b"no boundary at all", 400),
    (multipart(("application/dicom", b"x"))[:-10], 400),  # no closing boundary
    (f"--{BOUNDARY}\r\nContent-Type: application/dicom".encode(), 400),  # ends in headers
    (f"--{BOUNDARY}junk\r\n\r\nx\r\n--{BOUNDARY}--".encode(), 400),
    (multipart(*[("application/dicom", b"x")] * 11), 413),  # more parts than allowed
    (multipart(("application/dicom", b"x" * 2 * 10**6)), 413),  # over the request, unread
], ids=["no-boundary", "unclosed", "in-headers", "junk-after-boundary", "parts", "size"])
def test_malformed_or_oversized_bodies_are_refused(tmp_path, body, status) -> None:
    with pytest.raises(stow.Refused) as refused:
        parts_of(body, tmp_path)
    assert refused.value.status == status


@pytest.mark.parametrize(("reason", "code"), [
    ("not a DICOM file", stow.CANNOT_UNDERSTAND),
    ("truncated file: it ends inside the pixel data", stow.CANNOT_UNDERSTAND),
    ("missing SOPInstanceUID", stow.CANNOT_UNDERSTAND),
    ("file is 3 MB, over the 1 MB limit", stow.OUT_OF_RESOURCES),
    ("image is 60000 x 60000 pixels (3600 megapixels), over the 60 megapixel limit",
     stow.OUT_OF_RESOURCES),
    ("deflated data set inflates to more than 64 MB", stow.OUT_OF_RESOURCES),
    ("transfer syntax MPEG2 is not supported", stow.TRANSFER_SYNTAX_NOT_SUPPORTED),
    ("modality MR not allowed (allowed: CR, DX)", stow.SOP_CLASS_NOT_SUPPORTED),
    ("photometric interpretation RGB not supported (expected MONOCHROME1 or MONOCHROME2)",
     stow.SOP_CLASS_NOT_SUPPORTED),
    ("import failed: database unavailable", stow.PROCESSING_FAILURE),
])
def test_import_reasons_map_to_ps3_18_failure_reasons(reason, code) -> None:
    assert stow.failure_code(reason) == code


def test_warning_header_is_printable_ascii_and_bounded() -> None:
    header = stow.warning_header(['part 1: a "quoted"\r\nline ü'] + ["x"] * 25)
    assert header.startswith('299 - "part 1: a \\"quoted\\"??line ?", 299 - "x"')
    assert header.endswith('299 - "6 more not stored cleanly"')
    assert header.isascii() and "\n" not in header


@LIVE
def test_orthancs_own_stow_client_sends_a_study(live_server, tmp_path, sender,
                                                empty_orthanc) -> None:
    """A real PACS as the sender: Orthanc's DICOMweb plugin configured with our endpoint and
    the sender's token (``/dicom-web/servers``), then asked to STOW-RS a study it holds. Its
    boundary is 74 characters (RFC 2046 says 70: accepted). Not chunked: Django's test
    server does not decode chunked bodies (gunicorn does: ``body_of``)."""
    uid = generate_uid()
    made = [identified_cxr(tmp_path / f"o{i}.dcm", seed=40 + i, study_uid=uid) for i in range(2)]
    study_id = {empty_orthanc.upload(path)["ParentStudy"] for path, _ in made}.pop()
    empty_orthanc.rest("PUT", "/dicom-web/servers/trial", json={
        "Url": f"{live_server.url}/dicomweb/",
        "HttpHeaders": {"Authorization": f"Token {sender.key}"}, "ChunkedTransfers": False})
    empty_orthanc.rest("POST", "/dicom-web/servers/trial/stow",
                       json={"Resources": [study_id], "Synchronous": True})

    case = Case.objects.get()
    assert (case.site, case.images.count()) == (sender.site, 2)
    for image in case.images.all():
        stored = Path(image.file.path).read_bytes()
        for _, values in made:
            for name, value in values.items():
                assert value.encode() not in stored, f"{name} ({value}) survived"
    assert ImportJob.objects.get().source == "STOW-RS from h1-pacs"

    # Again: Orthanc is told each instance is already there (a warning, not a failure).
    empty_orthanc.rest("POST", "/dicom-web/servers/trial/stow",
                       json={"Resources": [study_id], "Synchronous": True})
    assert Image.objects.count() == 2

    # A wrong token: Orthanc's job fails, nothing is stored.
    empty_orthanc.rest("PUT", "/dicom-web/servers/trial", json={
        "Url": f"{live_server.url}/dicomweb/", "HttpHeaders": {"Authorization": "Token nope"},
        "ChunkedTransfers": False})
    with pytest.raises(RuntimeError, match="Orthanc POST"):
        empty_orthanc.rest("POST", "/dicom-web/servers/trial/stow",
                           json={"Resources": [study_id], "Synchronous": True})
    assert ImportJob.objects.count() == 2
