"""STOW-RS (DICOM PS3.18 §10.5): a site's system POSTs a study; each instance is imported.

The body is ``multipart/related; type="application/dicom"``: one DICOM Part 10 file per part.
It is read as it streams in (never whole into memory): each part goes to its own scratch file,
a part over ``DICOM_MAX_FILE_MB`` is counted but not kept, and the request as a whole may not
exceed ``DICOM_ZIP_MAX_TOTAL_MB`` (one upload's total, as for a zip) nor hold more than
``DICOM_ZIP_MAX_MEMBERS`` instances: a declared ``Content-Length`` over the limit is refused
(413) before anything is read. Only a well-formed body is imported (a malformed one is a 400
that imports nothing); then every part goes through ``pacs.intake.import_instance``, the same
validation, de-identification, de-duplication and per-file atomic import as ``import_dicom``,
under one ``ImportJob`` per request ("STOW-RS from <user>") that the coordinator sees in the
admin's import jobs, with the importer's reason for each part. A locked trial takes nothing
(409, before the body is read).

The answer is the Store Instances Response as DICOM JSON (``application/dicom+json``):

* ``ReferencedSOPSequence`` (0008,1199): the instances stored, each with its
  ``ReferencedSOPClassUID`` (0008,1150) and ``ReferencedSOPInstanceUID`` (0008,1155);
* ``FailedSOPSequence`` (0008,1198): the parts not stored, with their UIDs when the part could
  be read as DICOM, and ``FailureReason`` (0008,1197).

The UIDs are the ones the sender sent (it knows them), never the de-identified ones, and nothing
else of the instance is returned. No ``RetrieveURL`` (0008,1190) is given: the platform offers
no WADO-RS, so there is nothing to retrieve from. The reasons in words (the importer's) come in
the ``Warning`` header, ``299 - "part <n>: <reason>"`` per part not stored cleanly, as
PS3.18 uses that header for a service's warnings; the import job's report keeps them too.

Failure reasons (PS3.18 Store Instances Response, with PS3.4 B.2.3 and PS3.7 status meanings):

=========  =================================  ===============================================
 code       meaning                            the importer's reasons
=========  =================================  ===============================================
 0xA700     Refused: out of resources          over a size limit (file size, megapixels,
                                               decoded bytes, deflate bomb)
 0xA900     Data set does not match            ``POST studies/{study}``: an instance of
            (the request's study)              another study
 0xC122     Transfer syntax not supported      a transfer syntax the importer cannot decode
 0x0122     SOP class not supported            a modality the trial does not allow, a colour
                                               image, a DICOMDIR
 0x0110     Processing failure                 an error while storing (details only in the
                                               import job's report and the log)
 0xC000     Error: cannot understand           anything else: not DICOM, truncated, missing
                                               UIDs or pixel data, undecodable pixels, a part
                                               whose Content-Type is not application/dicom
=========  =================================  ===============================================

An instance already stored (the same SOP Instance UID) is stored once: it is listed in
``ReferencedSOPSequence`` (the sender may stop re-sending it) with ``WarningReason`` (0008,1196)
0x0111. PS3.18 defines no warning for "already stored"; 0111H is PS3.7's "Duplicate SOP
Instance", given as a warning because the instance is in the archive.

HTTP status: 200 every instance stored, 202 some stored and some failed or warned (duplicates),
409 none stored (or the trial is locked), 400 a malformed request, 406 an Accept header without
``application/dicom+json``, 411 no Content-Length (a chunked body the server does not decode:
Django's development and test servers; gunicorn decodes it), 413 too large, 415 not
``multipart/related; type="application/dicom"``; 401 and 403 are the view's (``pacs.views``).
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.utils import timezone

from trial.dicom.importer import REPORT_SAVE_EVERY
from trial.dicom.limits import mb
from trial.dicom.validate import read_header
from trial.lifecycle import TrialLocked, check_writable
from trial.models import ImportJob, Site, Trial

from .intake import import_instance

logger = logging.getLogger(__name__)

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
JSON = "application/json"  # what a client asking for plain JSON gets the same answer as
CHUNK = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024  # one part's header block
HEAD_BYTES = 64 * 1024  # kept of an instance over the size limit: its UIDs, for the answer
MAX_WARNINGS = 20  # reasons in the Warning header; the rest are counted
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")

OUT_OF_RESOURCES = 0xA700
# RFC 2046 allows 70 characters; Orthanc's STOW-RS client sends 74 (a UUID twice): accepted.
MAX_BOUNDARY = 200
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE = 0x0111

# DICOM JSON keys (PS3.18 F.2): group and element, 8 hex digits.
REFERENCED_SOP_CLASS = "00081150"
REFERENCED_SOP_INSTANCE = "00081155"
WARNING_REASON = "00081196"
FAILURE_REASON = "00081197"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"


class Refused(Exception):
    """The request as a whole is refused: nothing is imported; ``status`` says how."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def max_request_bytes() -> int:
    return settings.DICOM_ZIP_MAX_TOTAL_MB * 1024 * 1024


def max_instance_bytes() -> int:
    return settings.DICOM_MAX_FILE_MB * 1024 * 1024


def max_instances() -> int:
    return settings.DICOM_ZIP_MAX_MEMBERS


# --- the request ----------------------------------------------------------------------------

def boundary_of(content_type: str) -> str:
    """The multipart boundary, if the request is ``multipart/related; type=application/dicom``
    (else 415; a missing or invalid boundary is a 400)."""
    header = Message()
    header["Content-Type"] = content_type or ""
    media = header.get_content_type()
    kind = str(header.get_param("type") or "").strip().lower()
    if media != "multipart/related" or kind != DICOM:
        raise Refused(415, 'Send multipart/related; type="application/dicom" (PS3.18 10.5): '
                           f"one DICOM file per part; {content_type or 'no Content-Type'} given.")
    boundary = header.get_boundary()
    if not boundary or len(boundary) > MAX_BOUNDARY or not boundary.isascii():
        raise Refused(400, "The Content-Type has no valid multipart boundary.")
    return boundary


def body_of(request: HttpRequest) -> tuple[Readable, int | None]:
    """The body's stream and its declared length; 413 if that is over the limit, before any of
    it is read. A chunked body (no Content-Length) is read only where the server has decoded
    it (``wsgi.input_terminated``, e.g. gunicorn), else 411."""
    declared = request.META.get("CONTENT_LENGTH")
    try:
        length = int(declared) if declared not in (None, "") else None
    except ValueError:
        raise Refused(400, "Invalid Content-Length.") from None
    if length is None:
        if request.META.get("wsgi.input_terminated"):
            return request.META["wsgi.input"], None
        raise Refused(411, "Send a Content-Length.")
    if length < 0:
        raise Refused(400, "Invalid Content-Length.")
    if length > max_request_bytes():
        raise Refused(413, too_large(length))
    return request, length


def too_large(size: int) -> str:
    return f"The request is {mb(size)}, over the {mb(max_request_bytes())} limit."


# --- the multipart body ---------------------------------------------------------------------

@dataclass
class Part:
    """One body part, spooled to ``path`` unless it was refused on reading (``problem``)."""

    number: int
    path: Path | None = None
    size: int = 0
    problem: tuple[int, str] | None = None

    @property
    def name(self) -> str:  # the report names parts, never their UIDs (identifiers)
        return f"STOW-RS part {self.number}"


class _Source:
    """The body in chunks, counted against the request limit (also without Content-Length)."""

    def __init__(self, stream: Readable, limit: int) -> None:
        self.stream, self.limit, self.total = stream, limit, 0

    def more(self) -> bytes:
        data = self.stream.read(CHUNK)
        self.total += len(data)
        if self.total > self.limit:
            raise Refused(413, too_large(self.total))
        return data


def malformed(why: str) -> Refused:
    return Refused(400, f"Malformed multipart body: {why}.")


def read_parts(stream: Readable, boundary: str, folder: Path, *,
               max_bytes: int | None = None, max_part_bytes: int | None = None,
               max_parts: int | None = None) -> list[Part]:
    """Split a multipart body (RFC 2046 §5.1) into parts spooled under ``folder``.

    Strict: the body must hold a first boundary, each part's headers, and the closing
    boundary; a part whose Content-Type is not application/dicom, or over the per-instance
    limit, is kept as a failure with its reason (the others are still imported)."""
    max_bytes = max_request_bytes() if max_bytes is None else max_bytes
    max_part_bytes = max_instance_bytes() if max_part_bytes is None else max_part_bytes
    max_parts = max_instances() if max_parts is None else max_parts
    delimiter = b"\r\n--" + boundary.encode("ascii")
    source = _Source(stream, max_bytes)
    buf = bytearray(b"\r\n")  # the first boundary may open the body, without a CRLF before it

    def fill(why: str) -> None:
        data = source.more()
        if not data:
            raise malformed(why)
        buf.extend(data)

    while (found := buf.find(delimiter)) < 0:  # the preamble, ignored
        del buf[:max(0, len(buf) - len(delimiter) + 1)]
        fill("no boundary found")
    del buf[:found + len(delimiter)]
    parts: list[Part] = []
    while True:
        while len(buf) < 2:
            fill("no closing boundary")
        if buf.startswith(b"--"):
            return parts  # the closing boundary; an epilogue is ignored
        while (eol := buf.find(b"\r\n")) < 0:
            if len(buf) > MAX_HEADER_BYTES:
                raise malformed("text after a boundary")
            fill("no closing boundary")
        if bytes(buf[:eol]).strip(b" \t"):
            raise malformed("text after a boundary")
        del buf[:eol + 2]
        if len(parts) >= max_parts:
            raise Refused(413, f"More than {max_parts} instances in one request.")
        part = Part(number=len(parts) + 1)
        part.problem = _check_headers(_headers(buf, fill))
        _read_body(part, buf, fill, delimiter, folder, max_part_bytes)
        parts.append(part)


def _headers(buf: bytearray, fill: Callable[[str], None]) -> bytes:
    """A part's header block (consumed from ``buf``, with the blank line after it)."""
    while True:
        if buf.startswith(b"\r\n"):
            del buf[:2]
            return b""
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            block = bytes(buf[:end])
            del buf[:end + 4]
            return block
        if len(buf) > MAX_HEADER_BYTES:
            raise malformed("a part's headers are too long")
        fill("the body ends inside a part's headers")


def _check_headers(block: bytes) -> tuple[int, str] | None:
    """Why a part cannot be an instance, from its headers (None: it may be)."""
    headers = BytesHeaderParser().parsebytes(block + b"\r\n\r\n")
    if headers.defects or "Content-Type" not in headers:
        return CANNOT_UNDERSTAND, "part has no valid Content-Type (expected application/dicom)"
    if headers.get_content_type() != DICOM:
        return CANNOT_UNDERSTAND, (f"part is {headers.get_content_type()}, not application/dicom")
    encoding = str(headers.get("Content-Transfer-Encoding", "binary")).strip().lower()
    if encoding not in {"binary", "8bit", "7bit"}:
        return CANNOT_UNDERSTAND, f"part has Content-Transfer-Encoding {encoding} (send binary)"
    return None


def _read_body(part: Part, buf: bytearray, fill: Callable[[str], None], delimiter: bytes,
               folder: Path, limit: int) -> None:
    """Spool the part up to the next boundary. A part over ``limit`` keeps only its first
    ``HEAD_BYTES`` (enough to tell the sender which instance it was); a refused one, nothing."""
    out: BinaryIO | None = None
    if part.problem is None:
        part.path = folder / f"part-{part.number}.dcm"
        out = part.path.open("wb")
    written = 0
    try:
        while True:
            end = buf.find(delimiter)
            ready = end if end >= 0 else max(0, len(buf) - len(delimiter) + 1)
            part.size += ready
            if out is not None:
                if part.size > limit and part.problem is None:
                    part.problem = (OUT_OF_RESOURCES, "")  # its size is known at the end
                    written = min(written, HEAD_BYTES)
                    out.truncate(written)
                    out.seek(written)
                room = (HEAD_BYTES if part.problem else limit) - written
                if room > 0:
                    out.write(buf[:min(ready, room)])
                    written += min(ready, room)
            del buf[:ready]
            if end >= 0:
                del buf[:len(delimiter)]
                break
            fill(f"the body ends inside part {part.number} (no closing boundary)")
    finally:
        if out is not None:
            out.close()
    if part.problem == (OUT_OF_RESOURCES, ""):
        part.problem = (OUT_OF_RESOURCES, f"file is {mb(part.size)}, over the {mb(limit)} limit")


# --- importing and answering ----------------------------------------------------------------

@dataclass
class SenderUids:
    """What the sender itself sent: the only identifiers the answer may carry."""

    sop_class: str = ""
    sop_instance: str = ""
    study: str = ""


@dataclass
class Outcome:
    part: Part
    uids: SenderUids
    status: str  # imported, duplicate or rejected (the import report's)
    code: int | None = None  # FailureReason, or WarningReason of a duplicate
    text: str = ""  # for the sender (the Warning header)


@dataclass
class Answer:
    """The Store Instances Response: HTTP status, DICOM JSON body and the reasons in words."""

    status: int
    body: dict
    warnings: list[str] = field(default_factory=list)
    job: ImportJob | None = None


def sender_uids(path: Path | None) -> SenderUids:
    """The part's SOP Class, SOP Instance and Study UIDs, read from its header only (bounded);
    blank when the part is not readable DICOM or a value is not a UID."""
    if path is None:
        return SenderUids()
    try:
        ds = read_header(path).ds
    except Exception:  # noqa: BLE001 - DicomRejected or worse: the import says why
        return SenderUids()
    meta = getattr(ds, "file_meta", None) or {}

    def uid(value: object) -> str:
        text = str(value or "").strip()
        return text if len(text) <= 64 and UID.match(text) else ""

    return SenderUids(
        sop_class=uid(ds.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")),
        sop_instance=uid(ds.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID")),
        study=uid(ds.get("StudyInstanceUID")),
    )


def failure_code(reason: str) -> int:
    """The FailureReason for an importer's rejection reason (see the module's table)."""
    text = reason.lower()
    if text.startswith("import failed"):
        return PROCESSING_FAILURE
    if text.endswith(" limit") or " limit (" in text or "inflates to more than" in text:
        return OUT_OF_RESOURCES
    if text.startswith("transfer syntax") and "not supported" in text:
        return TRANSFER_SYNTAX_NOT_SUPPORTED
    if (text.startswith("modality ") and "not allowed" in text) or text.startswith(
            ("photometric interpretation", "dicomdir")):
        return SOP_CLASS_NOT_SUPPORTED
    return CANNOT_UNDERSTAND


def store(request: HttpRequest, *, site: Site, by: AbstractBaseUser,
          study_uid: str | None = None) -> Answer:
    """Read the request's instances and import each into the site's trial (one import job);
    raises ``Refused`` when the request as a whole is refused (nothing imported)."""
    if not (request.accepts(DICOM_JSON) or request.accepts(JSON)):
        raise Refused(406, f"The answer is {DICOM_JSON} (no XML is offered).")
    boundary = boundary_of(request.META.get("CONTENT_TYPE", ""))
    stream, _ = body_of(request)
    trial = site.trial
    _writable(trial)  # before reading: a locked trial reads no body
    with tempfile.TemporaryDirectory(prefix="cxr-stow-") as tmp:
        parts = read_parts(stream, boundary, Path(tmp))
        if not parts:
            raise Refused(400, "The request holds no instance.")
        _writable(trial)  # the body may have taken a while
        job = ImportJob.objects.create(
            trial=trial, site=site, created_by=by, status=ImportJob.Status.RUNNING,
            source=f"STOW-RS from {by.get_username()}"[:500], total=len(parts))
        try:
            outcomes = [_store_part(part, site=site, job=job, study_uid=study_uid)
                        for part in parts]
        except BaseException as exc:  # an outage: the job must not stay "running"
            job.status = ImportJob.Status.FAILED
            job.error = str(exc) or type(exc).__name__
            job.finished_at = timezone.now()
            job.save()
            raise
    job.status = ImportJob.Status.DONE
    job.finished_at = timezone.now()
    job.save()
    answer = respond(outcomes)
    answer.job = job
    logger.info("STOW-RS import job %s for site %s: %d imported, %d duplicates, %d rejected",
                job.pk, site.code, job.imported, job.duplicates, job.rejected)
    return answer


def _writable(trial: Trial) -> None:
    try:
        check_writable(trial, "Images")
    except TrialLocked as exc:
        raise Refused(409, f"{exc} It takes no new studies.") from None


def _store_part(part: Part, *, site: Site, job: ImportJob, study_uid: str | None) -> Outcome:
    uids = sender_uids(part.path)
    entry = {"file": part.name, "status": "rejected", "case": "", "reason": ""}
    code = None
    if part.problem is not None:
        code, reason = part.problem
        entry["reason"] = reason
    elif study_uid and uids.study and uids.study != study_uid:
        code = DOES_NOT_MATCH
        entry["reason"] = "the instance belongs to another study than the request's"
    else:
        entry = import_instance(site, part.path.read_bytes(), name=part.name, job=job)
    _count(job, entry)
    if entry["status"] == "duplicate":
        return Outcome(part, uids, "duplicate", DUPLICATE, "already stored (duplicate)")
    if entry["status"] == "imported":
        return Outcome(part, uids, "imported")
    code = code if code is not None else failure_code(entry["reason"])
    text = "processing failure" if code == PROCESSING_FAILURE else entry["reason"]
    return Outcome(part, uids, "rejected", code, text)


def _count(job: ImportJob, entry: dict) -> None:
    """The job's counters and report, as ``import_path`` keeps them (the report every
    ``REPORT_SAVE_EVERY`` parts and at the end)."""
    counter = {"imported": "imported", "duplicate": "duplicates", "rejected": "rejected"}
    name = counter[entry["status"]]
    setattr(job, name, getattr(job, name) + 1)
    job.processed += 1
    job.report.append(entry)
    fields = ["processed", "imported", "duplicates", "rejected"]
    if job.processed % REPORT_SAVE_EVERY == 0 or job.processed == job.total:
        fields.append("report")
    job.save(update_fields=fields)


def respond(outcomes: list[Outcome]) -> Answer:
    """The PS3.18 Store Instances Response for the parts' outcomes."""
    stored, failed, warnings = [], [], []
    for outcome in outcomes:
        item = _references(outcome.uids)
        if outcome.status == "rejected":
            item[FAILURE_REASON] = {"vr": "US", "Value": [outcome.code]}
            failed.append(item)
        else:
            if outcome.code is not None:
                item[WARNING_REASON] = {"vr": "US", "Value": [outcome.code]}
            stored.append(item)
        if outcome.text:
            warnings.append(f"part {outcome.part.number}: {outcome.text}")
    body: dict = {}
    if stored:
        body[REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": stored}
    if failed:
        body[FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    if not stored:
        status = 409
    elif failed or warnings:
        status = 202
    else:
        status = 200
    return Answer(status=status, body=body, warnings=warnings)


def _references(uids: SenderUids) -> dict:
    item = {}
    if uids.sop_class:
        item[REFERENCED_SOP_CLASS] = {"vr": "UI", "Value": [uids.sop_class]}
    if uids.sop_instance:
        item[REFERENCED_SOP_INSTANCE] = {"vr": "UI", "Value": [uids.sop_instance]}
    return item


def warning_header(warnings: list[str]) -> str:
    """RFC 9110/7234 ``Warning`` values (``299 - "text"``), printable ASCII only, at most
    ``MAX_WARNINGS`` of them."""
    shown = list(warnings[:MAX_WARNINGS])
    if len(warnings) > MAX_WARNINGS:
        shown.append(f"{len(warnings) - MAX_WARNINGS} more not stored cleanly")

    def quoted(text: str) -> str:
        clean = "".join(c if " " <= c <= "~" else "?" for c in text)[:300]
        return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return ", ".join(f"299 - {quoted(text)}" for text in shown)
