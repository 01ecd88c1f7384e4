"""Pull studies from a site's PACS by accession number (or study date), the way a research
coordinator works from a RIS worklist: query, retrieve, import, and say what happened to each.

Per accession number, in the list's order (blank lines ignored, a repeated one reported once):

1. An accession already pulled into a case of the trial (by an earlier run) is a duplicate at
   once, without asking the PACS: a second run of the same list skips what is in.
2. The PACS is queried: DIMSE C-FIND at STUDY level from our AE ``DICOM_CALLING_AE_TITLE``, or
   DICOMweb QIDO-RS. No study: not found. More than one: refused (which one is meant is the
   site's call). A study already in the trial (a case whose ``study_key`` is the salted hash of
   its Study Instance UID): duplicate, nothing retrieved.
3. The study is retrieved and imported now, through the importer files go through
   (``import_file``: validation, de-identification, de-duplication, one transaction each):

   - DIMSE: C-MOVE to our DICOM listener (``DICOM_LISTENER_AE_TITLE``; the listener must run,
     the PACS must know it as a move destination, and the PACS's own AE title must be a
     ``CallingAE`` of the site). The PACS sends the instances with C-STORE; the listener puts
     them in the spool and acknowledges each only once on disk, so when the C-MOVE's final
     answer comes, the study is whole in the spool: ``intake.import_study`` imports that
     folder at once (no quiet time). If the pull dies in between, the listener imports the
     folder itself once it is quiet: nothing is lost.
   - DICOMweb: WADO-RS of the study as stored (any transfer syntax), every instance written
     to a scratch folder first, then imported: a transfer that breaks half-way imports
     nothing.

Network failures (connection refused, timeouts, an association rejected or aborted, HTTP 5xx)
are retried ``ATTEMPTS`` times with a doubling pause from ``BACKOFF_S``; then the item fails
with the reason and the run goes on. A run in which the PACS never answered (every item that
needed it failed that way) is marked failed, with the error; running the same list again
retries the failed items.

Accession numbers are identifiers: never stored. A ``PullItem`` keeps the salted hash (the
trial's salt) and its line in the list; reasons, the run's ``request``, the import job's
report and the logs never contain one. The numbers are handed back to the caller only, in
memory (``PullRun.accessions``), to print for the coordinator who gave them.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.utils import timezone
from pydicom.dataset import Dataset
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from trial import secrets
from trial.audit import record
from trial.dicom.deid import salted_hash
from trial.dicom.importer import import_file
from trial.dicom.sources import SourceFile
from trial.errors import Invalid
from trial.lifecycle import check_writable
from trial.models import Case, ImportJob, Site

from . import intake
from .dimse import AE
from .models import CallingAE, PullItem, PullRun, RemoteNode, clean_ae

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
ATTEMPTS = 3  # tries of one network step before its item fails
BACKOFF_S = 2.0  # s before the second try, doubled before each next one
LISTENER_WAIT_S = 60.0  # s to wait for the listener's own import when it took the study first
WILDCARDS = set("*?\\")
MAX_ACCESSION = 16  # VR SH
PENDING = (0xFF00, 0xFF01)
SEALED_TTL_S = 24 * 3600  # a queued list older than this is not read (a lost, late task)
SUCCESS, WARNING, UNKNOWN_DESTINATION = 0x0000, 0xB000, 0xA801


class Unreachable(Exception):
    """A network failure talking to the PACS: worth trying again."""


class PullError(Exception):
    """A permanent failure of one item (not retried): its message is the item's reason."""


@dataclass(frozen=True)
class Study:
    """A study the PACS holds, as its query answered."""

    uid: str
    accession: str = ""


# -- the two protocols ----------------------------------------------------------------------


class Dimse:
    """C-FIND and C-MOVE from our calling AE; one association per operation (a retry starts
    afresh)."""

    def __init__(self, node: RemoteNode) -> None:
        self.node = node
        self.where = f"{node.ae_title} at {node.host}:{node.port}"

    def _associate(self, context: str):
        ae = AE(ae_title=settings.DICOM_CALLING_AE_TITLE)
        ae.add_requested_context(context)
        timeout = float(self.node.timeout_s)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        ae.connection_timeout = timeout
        assoc = ae.associate(self.node.host, int(self.node.port), ae_title=self.node.ae_title)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            answer = assoc.acceptor.primitive
            raise Unreachable(
                f"association rejected by {self.where} (result {answer.result}, source "
                f"{answer.result_source}, reason {answer.diagnostic}): is our AE title "
                f"{settings.DICOM_CALLING_AE_TITLE} declared in the PACS?")
        raise Unreachable(f"no association with {self.where} (connection refused, timed out "
                          "or aborted)")

    def find(self, filters: dict[str, str]) -> list[Study]:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        query.AccessionNumber = ""
        for keyword, value in filters.items():
            setattr(query, keyword, value)
        assoc = self._associate(StudyRootQueryRetrieveInformationModelFind)
        found = []
        try:
            for status, identifier in assoc.send_c_find(
                    query, StudyRootQueryRetrieveInformationModelFind):
                if "Status" not in status:
                    raise Unreachable(f"the association with {self.where} ended during the "
                                      "query (aborted or timed out)")
                code = int(status.Status)
                if code in PENDING and identifier is not None:
                    uid = str(identifier.get("StudyInstanceUID", "") or "").strip()
                    if uid:
                        found.append(Study(uid, str(identifier.get("AccessionNumber", "")
                                                    or "").strip()))
                elif code != SUCCESS:
                    raise PullError(f"{self.where} refused the query (C-FIND status "
                                    f"0x{code:04X})")
        finally:
            if assoc.is_established:
                assoc.release()
        return found

    def retrieve(self, site: Site, study: Study, *, job: ImportJob, by, name: str
                 ) -> tuple[list[dict], str]:
        """C-MOVE the study to our listener, then import its spool folder now."""
        destination = settings.DICOM_LISTENER_AE_TITLE
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study.uid
        try:
            final = self._move(query, destination)
        except Unreachable:
            intake.discard_study(site, study.uid)  # a retry moves it all again
            raise
        code = int(final.Status)
        completed = int(final.get("NumberOfCompletedSuboperations", 0) or 0)
        failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
        if code == UNKNOWN_DESTINATION:
            raise PullError(f"{self.where} does not know our listener's AE title {destination} "
                            "as a move destination: declare it (host and port) in the PACS")
        if code not in (SUCCESS, WARNING) and not completed:
            intake.discard_study(site, study.uid)
            raise PullError(
                f"{self.where} could not send the study to our listener {destination} (C-MOVE "
                f"status 0x{code:04X}, {failed} instance(s) failed): is the DICOM listener "
                f"running, and is the PACS's AE title a calling AE of site {site.code}?")
        note = (f"{failed} instance(s) the PACS could not send to our listener (a storage "
                "class it does not take?)" if failed else "")
        entries = intake.import_study(site, study.uid, job=job, by=by, name=name)
        if entries is None:  # nothing arrived, or the listener's own settle took it first
            entries = []
            if completed:
                note = "; ".join(filter(None, [note, self._imported_by_listener(site, study)]))
        return entries, note

    def _move(self, query: Dataset, destination: str) -> Dataset:
        assoc = self._associate(StudyRootQueryRetrieveInformationModelMove)
        final = None
        try:
            for status, _ in assoc.send_c_move(query, destination,
                                               StudyRootQueryRetrieveInformationModelMove):
                if "Status" not in status:
                    raise Unreachable(f"the association with {self.where} ended during the "
                                      "retrieval (aborted or timed out)")
                if int(status.Status) not in PENDING:
                    final = status
        finally:
            if assoc.is_established:
                assoc.release()
        if final is None:
            raise Unreachable(f"{self.where} gave no final answer to the retrieval")
        return final

    @staticmethod
    def _imported_by_listener(site: Site, study: Study) -> str:
        key = salted_hash(site.trial.deid_salt, study.uid)
        deadline = time.monotonic() + LISTENER_WAIT_S
        while time.monotonic() < deadline:
            if Case.objects.filter(trial=site.trial, study_key=key).exists():
                return "imported by the DICOM listener"
            time.sleep(0.2)
        return "the DICOM listener is importing it"


class Dicomweb:
    """QIDO-RS and WADO-RS with dicomweb-client; the client's own retries are off (ours
    apply to connection failures too)."""

    def __init__(self, node: RemoteNode) -> None:
        from dicomweb_client.api import DICOMwebClient

        self.node = node
        self.where = node.base_url
        headers = {}
        if node.auth_env:
            value = secrets.read(node.auth_env) or ""
            if not value:
                raise PullError(f"the environment variable {node.auth_env} (the Authorization "
                                f"header for {node.name}) is not set")
            headers["Authorization"] = value
        self.client = DICOMwebClient(url=node.base_url, headers=headers,
                                     timeout=float(node.timeout_s))
        self.client.set_http_retry_params(retry=False)

    def _failed(self, exc: requests.RequestException, what: str) -> Exception:
        """Our own message: requests' names the URL, whose query holds the accession."""
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            code = exc.response.status_code
            message = f"{self.where} answered HTTP {code} to the {what}"
            if code in (401, 403):
                return PullError(f"{message}: check the node's credentials")
            return Unreachable(message) if code >= 500 or code in (408, 429) \
                else PullError(message)
        return Unreachable(f"no answer from {self.where} to the {what} "
                           f"({type(exc).__name__})")

    def find(self, filters: dict[str, str]) -> list[Study]:
        try:
            answers = self.client.search_for_studies(search_filters=filters,
                                                     get_remaining=True)
        except requests.RequestException as exc:
            raise self._failed(exc, "query") from None
        found = []
        for answer in answers or []:
            uid = _value(answer, "0020000D")
            if uid:
                found.append(Study(uid, _value(answer, "00080050")))
        return found

    def retrieve(self, site: Site, study: Study, *, job: ImportJob, by, name: str
                 ) -> tuple[list[dict], str]:
        """WADO-RS the whole study into a scratch folder, then import each instance."""
        with tempfile.TemporaryDirectory(prefix="cxr-pull-") as tmp:
            paths = []
            try:
                for n, ds in enumerate(self.client.iter_study(
                        study.uid, media_types=(("application/dicom", "*"),)), start=1):
                    path = Path(tmp) / f"{n}.dcm"
                    ds.save_as(path, enforce_file_format=True)
                    paths.append(path)
            except requests.RequestException as exc:
                raise self._failed(exc, "retrieval") from None
            entries = [import_file(SourceFile(name=f"{name} {n}", path=path), trial=site.trial,
                                   site=site, by=by, job=job)
                       for n, path in enumerate(paths, start=1)]
        return entries, ""


def _value(answer: dict, tag: str) -> str:
    values = (answer.get(tag) or {}).get("Value") or [""]
    return str(values[0] or "").strip()


def client_for(node: RemoteNode) -> Dimse | Dicomweb:
    if node.protocol == RemoteNode.Protocol.DIMSE:
        return Dimse(node)
    return Dicomweb(node)


# -- a run --------------------------------------------------------------------------------


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def _retrying(step: Callable[[], object]) -> object:
    """``step()``, tried again after a network failure; the last failure says how often."""
    pause = BACKOFF_S
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return step()
        except Unreachable as exc:
            if attempt == ATTEMPTS:
                raise Unreachable(f"{exc} (tried {ATTEMPTS} times)") from None
            logger.warning("PACS step failed (attempt %d of %d), trying again in %g s: %s",
                           attempt, ATTEMPTS, pause, exc)
            _pause(pause)
            pause *= 2
    raise AssertionError("unreachable")


def check_accession(accession: str) -> str:
    """Why an accession number cannot be queried as it is (empty: it can): a wildcard would
    match other patients' studies."""
    if len(accession) > MAX_ACCESSION:
        return f"not an accession number (over {MAX_ACCESSION} characters)"
    if WILDCARDS & set(accession):
        return "not an accession number (it contains * ? or \\)"
    return ""


def distinct(accessions: Iterable[str]) -> list[tuple[int, str]]:
    """(line, accession) of each distinct non-blank accession, at its first line (1-based)."""
    seen: set[str] = set()
    found = []
    for line, raw in enumerate(accessions, start=1):
        accession = (raw or "").strip()
        if accession and accession not in seen:
            seen.add(accession)
            found.append((line, accession))
    return found


def check_node(site: Site, node: RemoteNode) -> None:
    """``Invalid`` (or ``TrialLocked``) unless ``node`` may be pulled from into ``site``."""
    if node.site_id != site.pk:
        raise Invalid(f"{node} is not a node of site {site.code}.")
    if not node.retrieve:
        raise Invalid(f"{node} is not configured for retrieval.")
    check_writable(site.trial, "Images")  # a locked trial takes no new case
    if node.protocol == RemoteNode.Protocol.DIMSE:
        other = CallingAE.objects.filter(ae_title=clean_ae(node.ae_title)).exclude(
            site=site).select_related("site").first()
        if other is not None:
            # The listener files what this PACS sends under the site its AE title names:
            # a C-MOVE for this site would land in the other site's trial.
            raise Invalid(f"{node}'s AE title {other.ae_title} sends to site "
                          f"{other.site.code} of another trial or site: the studies moved "
                          "would be filed there. Give this PACS another AE title for "
                          "this site, or pull over DICOMweb.")


class _Run:
    """One pull run's state: its job, its client, and how to settle one item."""

    def __init__(self, site: Site, node: RemoteNode, *, by, request: str,
                 run: PullRun | None = None) -> None:
        check_node(site, node)
        self.site, self.node = site, node
        self.trial = site.trial
        self.actor = by if getattr(by, "is_authenticated", False) else None
        self.run = run or PullRun.objects.create(site=site, node=node, request=request[:300],
                                                 requested_by=self.actor)
        self.run.accessions = {}  # line -> accession: in memory only, for the caller
        self.job = ImportJob.objects.create(
            trial=self.trial, site=site, created_by=self.actor,
            source=f"PACS pull from {node.name} (pull run #{self.run.pk})"[:500],
            status=ImportJob.Status.RUNNING)
        self.run.job = self.job
        self.client = None
        self.unreachable = 0  # items failed for the network
        self.reached = False  # did the PACS answer anything in this run
        self.query_error = ""  # a date range's query failed: nothing to pull

    def attempt(self, step: Callable[[], object]) -> object:
        value = _retrying(step)
        self.reached = True
        return value

    def key(self, value: str) -> str:
        return salted_hash(self.trial.deid_salt, value)

    def connect(self) -> Dimse | Dicomweb:
        if self.client is None:
            self.client = client_for(self.node)
        return self.client

    def settle(self, item: PullItem, step: Callable[[], tuple[str, str, int, Case | None]]
               ) -> None:
        """Run one item's work and record its outcome; only an interrupt stops the run."""
        try:
            status, reason, count, case = step()
        except Unreachable as exc:
            self.unreachable += 1
            status, reason, count, case = PullItem.Status.FAILED, \
                f"PACS unreachable: {exc}", 0, None
        except PullError as exc:
            status, reason, count, case = PullItem.Status.FAILED, str(exc), 0, None
        except Exception as exc:  # a bug or an outage must not stop the other items
            logger.exception("Pull of line %d from %s failed", item.line, self.node)
            status, reason, count, case = PullItem.Status.FAILED, \
                f"pull failed: {type(exc).__name__}", 0, None
        item.status, item.reason, item.instances, item.case = status, reason, count, case
        item.save(update_fields=["status", "reason", "instances", "case", "updated_at"])
        self.run.processed += 1
        self.run.save(update_fields=["processed"])

    def earlier(self, key: str) -> PullItem | None:
        """This accession, pulled into a case by an earlier run at the site."""
        return (PullItem.objects.filter(run__site=self.site, accession_key=key,
                                        case__isnull=False)
                .exclude(run=self.run).select_related("case", "run").order_by("-pk").first())

    def by_accession(self, accession: str, item: PullItem) -> tuple:
        problem = check_accession(accession)
        if problem:
            return PullItem.Status.REFUSED, problem, 0, None
        earlier = self.earlier(item.accession_key)
        if earlier is not None:
            return (PullItem.Status.DUPLICATE, f"already in the trial (case "
                    f"{earlier.case.case_id}, pull run #{earlier.run_id})", 0, earlier.case)
        client = self.connect()
        found = self.attempt(lambda: client.find({"AccessionNumber": accession}))
        found = [s for s in found if s.accession in (accession, "")]  # exact matches only
        uids = sorted({s.uid for s in found})
        if not uids:
            return PullItem.Status.NOT_FOUND, f"no study with this accession number on " \
                                              f"{self.node.name}", 0, None
        if len(uids) > 1:
            return (PullItem.Status.REFUSED, f"{len(uids)} studies have this accession number "
                    f"on {self.node.name}: ask the site which one is meant", 0, None)
        return self.study(Study(uids[0], accession), item)

    def study(self, study: Study, item: PullItem) -> tuple:
        """A found study: a duplicate if in the trial, else retrieved and imported."""
        case = Case.objects.filter(trial=self.trial, study_key=self.key(study.uid)).first()
        if case is not None:
            return PullItem.Status.DUPLICATE, f"already in the trial (case {case.case_id})", \
                0, case
        client = self.connect()
        entries, note = self.attempt(lambda: client.retrieve(
            self.site, study, job=self.job, by=self.actor, name=f"line {item.line} instance"))
        self.count(entries)
        case = Case.objects.filter(trial=self.trial, study_key=self.key(study.uid)).first()
        return outcome(entries, note, case)

    def count(self, entries: list[dict]) -> None:
        job = self.job
        field = {"imported": "imported", "duplicate": "duplicates", "rejected": "rejected"}
        for entry in entries:
            setattr(job, field[entry["status"]], getattr(job, field[entry["status"]]) + 1)
            job.report.append(entry)
        job.total += len(entries)
        job.processed += len(entries)
        job.save(update_fields=["total", "processed", "imported", "duplicates", "rejected",
                                "report"])

    def finish(self, *, interrupted: BaseException | None = None) -> PullRun:
        run, job = self.run, self.job
        now = timezone.now()
        items = run.total
        if interrupted is not None:
            run.status = PullRun.Status.FAILED
            run.error = f"interrupted ({type(interrupted).__name__}): run the same list " \
                        "again to finish it"
        elif self.query_error:
            run.status = PullRun.Status.FAILED
            run.error = self.query_error
        elif self.unreachable and not self.reached:  # every item that asked it failed
            run.status = PullRun.Status.FAILED
            last = run.items.filter(status=PullItem.Status.FAILED).last()
            run.error = f"the PACS {self.node.name} could not be reached: " \
                        f"{last.reason if last else ''}"
        else:
            run.status = PullRun.Status.DONE
        run.finished_at = now
        run.save(update_fields=["status", "error", "finished_at"])
        job.status = ImportJob.Status.FAILED if interrupted else ImportJob.Status.DONE
        job.error = run.error if interrupted else ""
        job.finished_at = now
        job.save(update_fields=["status", "error", "finished_at"])
        counts = Counter(run.items.values_list("status", flat=True))
        record(action="pacs.pull_finished", obj=run, actor=self.actor, trial=self.trial,
               after={"node": self.node.name, "status": run.status, "items": items,
                      "import_job": job.pk, **{k: counts.get(k, 0)
                                               for k in PullItem.Status.values}})
        return run


def outcome(entries: list[dict], note: str, case: Case | None) -> tuple:
    """An item's (status, reason, instances, case) from its instances' import entries."""
    statuses = Counter(e["status"] for e in entries)
    refusals = sorted({e["reason"] for e in entries if e["status"] == "rejected"})
    refused = f"{statuses['rejected']} instance(s) refused: {'; '.join(refusals)}" \
        if refusals else ""
    if statuses["imported"]:
        reason = "; ".join(filter(None, [refused, note]))
        return PullItem.Status.IMPORTED, reason, statuses["imported"], case
    if statuses["duplicate"]:
        return PullItem.Status.DUPLICATE, "; ".join(filter(None, [
            "its instances are already in the trial", refused, note])), 0, case
    if statuses["rejected"]:
        return PullItem.Status.REFUSED, "; ".join(filter(None, [refusals and "; ".join(
            refusals), note])), 0, None
    if case is not None:  # the listener imported it itself
        return PullItem.Status.IMPORTED, note, case.images.count(), case
    return PullItem.Status.FAILED, note or "the PACS sent no instance of the study", 0, None


def _loop(state: _Run, work: list[tuple[PullItem, Callable[[], tuple]]],
          progress: Progress | None) -> PullRun:
    total = len(work)
    if progress:
        progress(0, total)
    try:
        for done, (item, step) in enumerate(work, start=1):
            state.settle(item, step)
            if progress:
                progress(done, total)
    except BaseException as exc:  # an interrupt: the run must not stay "running"
        state.finish(interrupted=exc)
        raise
    return state.finish()


def pull(site: Site, node: RemoteNode, accessions: list[str], *, by=None,
         progress: Progress | None = None, request_label: str = "") -> PullRun:
    """Pull the studies of a list of accession numbers from ``node`` into the site's trial:
    the run, with one item per distinct accession number (see the module's docstring).
    ``run.accessions`` (line -> accession) and ``run.job`` are set in memory for the
    caller's report."""
    wanted = distinct(accessions)
    return _pull(_Run(site, node, by=by, request=_request(wanted, request_label)), wanted,
                 progress)


def _request(wanted: list[tuple[int, str]], label: str) -> str:
    return f"{len(wanted)} accession number(s)" + (f" from {label}" if label else "")


def _pull(state: _Run, wanted: list[tuple[int, str]], progress: Progress | None) -> PullRun:
    run = state.run
    run.total = len(wanted)
    run.save(update_fields=["total"])
    work = []
    for line, accession in wanted:
        item = PullItem.objects.create(run=run, line=line, accession_key=state.key(accession))
        run.accessions[line] = accession
        work.append((item, lambda a=accession, i=item: state.by_accession(a, i)))
    return _loop(state, work, progress)


def queue_pull(site: Site, node: RemoteNode, accessions: list[str], *, by=None,
               request_label: str = "") -> tuple[PullRun, str]:
    """A pull for a worker (the admin's form, with a broker): the run, checked as ``pull``
    checks it and waiting (``total`` set, nothing done), and the sealed list for
    ``run_queued`` (encrypted: accession numbers are identifiers, not left in the broker)."""
    wanted = distinct(accessions)
    check_node(site, node)
    actor = by if getattr(by, "is_authenticated", False) else None
    run = PullRun.objects.create(site=site, node=node, request=_request(wanted, request_label),
                                 requested_by=actor, total=len(wanted))
    return run, seal({str(line): accession for line, accession in wanted})


def run_queued(run: PullRun, sealed: str) -> PullRun:
    """Do a queued pull (a worker). A run no longer waiting (done, or taken by an earlier
    delivery of the task) is left as it is: the coordinator runs the list again, which skips
    what is in."""
    if run.status != PullRun.Status.RUNNING or run.items.exists():
        return run
    wanted = sorted((int(line), accession) for line, accession in unseal(sealed).items())
    try:
        state = _Run(run.site, run.node, by=run.requested_by, request=run.request, run=run)
    except Exception as exc:  # locked since, or the node changed: the run says why
        run.status, run.error = PullRun.Status.FAILED, str(exc)
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        return run
    return _pull(state, wanted, None)


def _fernet() -> Fernet:
    """A key of its own, derived from SECRET_KEY (web and workers share it)."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cxr-pacs-pull-list",
               info=b"accession numbers in a queued pull").derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(accessions: dict[str, str]) -> str:
    return _fernet().encrypt(json.dumps(accessions).encode()).decode()


def unseal(sealed: str) -> dict[str, str]:
    """The sealed list; ``PullError`` if it is not one of ours or older than a day."""
    try:
        return json.loads(_fernet().decrypt(sealed.encode(), ttl=SEALED_TTL_S))
    except (InvalidToken, ValueError) as exc:
        raise PullError("the queued list could not be read (expired, or another "
                        "SECRET_KEY)") from exc


def pull_dates(site: Site, node: RemoteNode, first: str, last: str, *, by=None,
               progress: Progress | None = None) -> PullRun:
    """Pull every study of ``node`` dated ``first`` to ``last`` (YYYYMMDD, inclusive): one
    item per study, keyed by its accession number's salted hash (its Study Instance UID's if
    it has none, or shares it with another study)."""
    state = _Run(site, node, by=by, request=f"studies dated {first} to {last}")
    run = state.run
    try:
        client = state.connect()
        found = state.attempt(lambda: client.find({"StudyDate": f"{first}-{last}"}))
    except (Unreachable, PullError) as exc:
        state.query_error = f"the PACS {node.name} could not be queried: {exc}"
        return state.finish()
    studies = list({s.uid: s for s in found}.values())
    shared = Counter(s.accession for s in studies)
    run.total = len(studies)
    run.save(update_fields=["total"])
    work = []
    for line, study in enumerate(studies, start=1):
        label = study.accession if study.accession and shared[study.accession] == 1 else ""
        item = PullItem.objects.create(run=run, line=line,
                                       accession_key=state.key(label or study.uid))
        run.accessions[line] = label or "(no accession number)"
        work.append((item, lambda s=study, i=item: state.study(s, i)))
    return _loop(state, work, progress)
