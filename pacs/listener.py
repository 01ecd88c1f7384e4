"""The DICOM listener: a C-STORE SCP (answering C-ECHO too) that feeds the spool.

Who may send is decided once, at association: the calling AE title must be a ``CallingAE``
(whose site the studies then belong to); anyone else is refused with an A-ASSOCIATE-RJ
("calling AE title not recognised") and logged with the address it came from. Each received
instance is written, as sent (its transfer syntax kept, nothing decoded), into the spool with
``pacs.intake.receive``; the sender is told success only once the file is safely on disk. A
thread of the listener settles the spool every few seconds: studies quiet for
``DICOM_STUDY_QUIET_SECONDS`` go through the same import as ``import_dicom``
(``intake.settle``), on a Celery worker when there is a broker (``REDIS_URL``; the listener's
own process then only receives), else in that thread. The associations' threads touch the
database only at association time, and close their connection straight after: a busy sender
costs no query per instance.
"""

from __future__ import annotations

import io
import logging
import threading
import weakref
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.sop_class import (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
    Verification,
)

from drafting.tasks import in_process
from trial.dicom.validate import DicomRejected, max_bytes, read_header
from trial.models import ImportJob, Site, Trial

from . import intake, tasks
from .dimse import AE, evt
from .models import CallingAE, clean_ae

logger = logging.getLogger(__name__)

# What a chest X-ray arrives as. Other storage SOP classes are refused at negotiation (the
# sender learns it then), rather than accepted and rejected at import.
STORAGE_CLASSES = (
    ComputedRadiographyImageStorage,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    SecondaryCaptureImageStorage,
)
# Uncompressed and the compressed syntaxes the importer decodes (pylibjpeg, pyjpegls).
TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    RLELossless,
)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # the file could not be written: the sender should try again
CANNOT_UNDERSTAND = 0xC000
# A-ASSOCIATE-RJ (result, source, diagnostic), PS3.8 9.3.4
REJECT_UNKNOWN_CALLER = (0x01, 0x01, 0x03)  # permanent, service user, calling AE unknown
REJECT_TRY_LATER = (0x02, 0x01, 0x01)  # transient, service user, no reason given
SETTLE_EVERY = 5.0  # s between two looks at the spool


@dataclass
class Caller:
    """An accepted association: who sent, from where, for which site, and how many."""

    ae_title: str
    address: str
    site: Site
    received: int = 0


def peer(assoc) -> str:
    return f"{assoc.requestor.address}:{assoc.requestor.port}"


def site_for(ae_title: str, address: str | None = None) -> Site | None:
    """The site whose studies a calling AE title sends from ``address`` (None: not allowed to
    send: an unknown AE title, or one the site ties to other addresses)."""
    calling = CallingAE.objects.select_related("site__trial").filter(
        ae_title=clean_ae(ae_title)).first()
    if calling is None or (address is not None and not calling.admits(address)):
        return None
    return calling.site


class Listener:
    """The C-STORE/C-ECHO SCP and its settle thread; ``start`` returns at once."""

    def __init__(self, *, ae_title: str | None = None, port: int | None = None,
                 host: str = "0.0.0.0", settle_every: float = SETTLE_EVERY) -> None:
        self.ae_title = clean_ae(ae_title or settings.DICOM_LISTENER_AE_TITLE)
        self.port = int(port if port is not None else settings.DICOM_LISTENER_PORT)
        self.host = host
        self.settle_every = settle_every
        self._callers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = None
        self._settler: threading.Thread | None = None
        self.rounds = 0  # settle rounds done: a test waits for some to pass

    # -- life cycle -------------------------------------------------------------------------

    def application_entity(self) -> AE:
        ae = AE(ae_title=self.ae_title)
        ae.require_called_aet = True  # a sender configured for another AE is told so
        ae.add_supported_context(Verification)
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        return ae

    def start(self) -> None:
        """Listen (in pynetdicom's threads) and settle the spool (in a thread of its own)."""
        recovered = intake.recover()
        if recovered:
            logger.warning("%d study folder(s) left by an interrupted import are queued again",
                           recovered)
        handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
        ]
        self._stopping.clear()
        self._server = self.application_entity().start_server(
            (self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        self._settler = threading.Thread(target=self._settle_loop, name="dicom-settle")
        self._settler.start()
        logger.info("DICOM listener %s on %s:%s (spool %s; a study is imported after %g s "
                    "quiet)", self.ae_title, self.host, self.port, intake.spool_root(),
                    intake.quiet_seconds())

    def stop(self, timeout: float = 120.0) -> None:
        """Stop listening (open associations are aborted: their finished files are kept),
        then let an import in progress finish."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stopping.set()
        if self._settler is not None:
            self._settler.join(timeout)
            if self._settler.is_alive():
                logger.warning("The spool's import did not finish within %g s", timeout)
            self._settler = None
        logger.info("DICOM listener %s stopped", self.ae_title)

    # -- settling ---------------------------------------------------------------------------

    def _settle_loop(self) -> None:
        while not self._stopping.wait(self.settle_every):
            self.settle_once()
            self.rounds += 1

    def settle_once(self) -> list[ImportJob]:
        """Import the quiet studies now; an outage is logged and tried again next round."""
        try:
            hand_off = None if in_process() else tasks.hand_off  # a broker: workers import
            jobs = intake.settle(hand_off=hand_off)
            if hand_off is not None:
                timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
                for site, folder in intake.stale_queued(older_than=timeout):
                    logger.warning("A received study handed to a worker %d s ago is still in "
                                   "the spool: handed off again", timeout)
                    if not hand_off(site, folder):
                        job = intake.import_queued(site, folder)
                        jobs += [job] if job else []
            for job in jobs:
                logger.info("Received study imported for site %s (import #%s): %d imported, "
                            "%d duplicate, %d rejected", job.site.code, job.pk, job.imported,
                            job.duplicates, job.rejected)
            return jobs
        except Exception:
            logger.exception("Settling the DICOM spool failed; trying again later")
            return []
        finally:
            connection.close()  # this thread's own connection: none kept between rounds

    # -- associations -----------------------------------------------------------------------

    def _caller(self, assoc) -> Caller | None:
        with self._lock:
            return self._callers.get(assoc)

    def _on_requested(self, event) -> None:
        """Accept only a known calling AE title; fail closed if it cannot be checked."""
        assoc = event.assoc
        ae_title = clean_ae(assoc.requestor.primitive.calling_ae_title)
        address = peer(assoc)
        try:
            site = site_for(ae_title, assoc.requestor.address)
        except Exception:
            logger.exception("Association from %r at %s refused: the calling AE could not be "
                             "checked", ae_title, address)
            self._reject(assoc, REJECT_TRY_LATER)
            return
        finally:
            connection.close()
        if site is None:
            logger.warning("Association from unknown calling AE %r at %s refused (or not "
                           "from its addresses)", ae_title, address)
            self._reject(assoc, REJECT_UNKNOWN_CALLER)
            return
        if site.trial.status == Trial.Status.LOCKED:  # a locked trial takes no new image
            logger.warning("Association from %r at %s refused: the trial of site %s is locked",
                           ae_title, address, site.code)
            self._reject(assoc, REJECT_UNKNOWN_CALLER)
            return
        with self._lock:
            self._callers[assoc] = Caller(ae_title=ae_title, address=address, site=site)

    @staticmethod
    def _reject(assoc, reason: tuple[int, int, int]) -> None:
        assoc.acse.send_reject(*reason)  # run_reactor then skips the negotiation
        assoc.kill()

    def _on_accepted(self, event) -> None:
        caller = self._caller(event.assoc)
        if caller:
            logger.info("Association from %r at %s accepted (site %s)", caller.ae_title,
                        caller.address, caller.site.code)

    def _on_rejected(self, event) -> None:
        """A known caller refused by negotiation (wrong called AE, too many associations)."""
        assoc = event.assoc
        with self._lock:
            caller = self._callers.pop(assoc, None)
        if caller:
            logger.warning("Association from %r at %s refused at negotiation (called AE %r, "
                           "we are %r; or too many associations)",
                           caller.ae_title, caller.address,
                           assoc.requestor.primitive.called_ae_title, self.ae_title)

    def _on_ended(self, event) -> None:
        with self._lock:
            caller = self._callers.pop(event.assoc, None)
        if caller:
            how = "released" if event.event is evt.EVT_RELEASED else "aborted"
            logger.info("Association from %r at %s %s after %d instance(s)", caller.ae_title,
                        caller.address, how, caller.received)

    @staticmethod
    def _on_echo(event) -> int:
        return SUCCESS

    def _on_store(self, event) -> int:
        """Spool the instance as sent; success only once it is on disk."""
        caller = self._caller(event.assoc)
        if caller is None:  # cannot happen: the association was accepted for a caller
            logger.error("C-STORE on an association with no known caller refused")
            return CANNOT_UNDERSTAND
        sop_uid = str(event.request.AffectedSOPInstanceUID or "").strip()
        try:
            data = event.encoded_dataset()  # preamble, file meta (the context's syntax), data
            if len(data) > max_bytes():  # the import's own limit, before it reaches the disk
                logger.warning("Instance from %r refused: %d MB, over DICOM_MAX_FILE_MB",
                               caller.ae_title, len(data) // (1024 * 1024))
                return OUT_OF_RESOURCES
            study_uid = study_of(data) or f"no-study:{sop_uid}"  # the import says what is wrong
            intake.receive(caller.site, data, study_uid=study_uid, sop_uid=sop_uid)
        except OSError:
            logger.exception("Instance from %r not written to the spool", caller.ae_title)
            return OUT_OF_RESOURCES
        except Exception:
            logger.exception("Instance from %r not received", caller.ae_title)
            return CANNOT_UNDERSTAND
        caller.received += 1
        return SUCCESS


def study_of(data: bytes) -> str:
    """The Study Instance UID of an encoded instance, read up to its pixel data only (a
    deflated one is inflated within the importer's bounds); empty if unreadable."""
    try:
        ds = read_header(io.BytesIO(data)).ds
    except DicomRejected:
        return ""
    return str(ds.get("StudyInstanceUID", "") or "").strip()
