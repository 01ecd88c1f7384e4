"""Sending a signed final report to the site's PACS: one ``ReportDelivery`` per (review, node).

On sign-off (``reader.review.review_signed``) every node of the case's site that
``receives_reports`` gets a queued delivery. A run claims it (status running, a claim token
and a lease) in a short transaction, builds the SR (``pacs.sr``) and sends it outside any
transaction, by C-STORE (a DIMSE node, from ``DICOM_CALLING_AE_TITLE``) or STOW-RS (a
DICOMweb node, its Authorization header from the environment variable the node names), and
stores the outcome only if it still holds the claim: a task delivered twice sends one
report (and the SR keeps one SOP Instance UID at every attempt, so a resend replaces it).

A connection refused or timed out, an association rejected or aborted, an HTTP 5xx (or 408,
429) is retried with backoff (``PACS_DELIVERY_BACKOFF_S``), at most
``PACS_DELIVERY_MAX_ATTEMPTS`` attempts; then, and at once for what a retry cannot fix (a
refused instance, a missing setting), the delivery fails with its reason, shown on the trial's
dashboard, where a coordinator retries it (``retry_failed``). Done and failed are audited.
Scheduling the retries is ``pacs.tasks``'s.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from drafting.run import Outcome, backoff, lease_margin
from reader.models import Review
from trial import audit, secrets

from . import sr
from .models import RemoteNode, ReportDelivery

logger = logging.getLogger(__name__)

STALE = timedelta(minutes=10)  # queued and sent this long ago, never started: sent again
RETRY_HTTP = {408, 429}


class DeliveryError(Exception):
    """A send that did not store the report; ``retryable``: a later attempt may."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def max_attempts() -> int:
    return int(getattr(settings, "PACS_DELIVERY_MAX_ATTEMPTS", 5))


def backoff_base() -> float:
    return float(getattr(settings, "PACS_DELIVERY_BACKOFF_S", 30.0))


# Queueing.

def queue_report(review: Any) -> list[ReportDelivery]:
    """The deliveries of a signed ``review`` to its site's nodes that receive reports (made
    once: a second call returns the same rows). The queued ones are for the caller to send."""
    if review.status != review.Status.SIGNED:
        return []
    nodes = RemoteNode.objects.filter(site_id=review.case.site_id, receives_reports=True)
    made = []
    for node in nodes:
        delivery, created = ReportDelivery.objects.get_or_create(
            review=review, node=node,
            defaults={"queued_at": timezone.now(), "sop_instance_uid": generate_uid()})
        if created:
            audit.record(action="report_delivery.queued", obj=delivery,
                         trial=review.case.trial, after={"node": node.name,
                                                         "case": review.case.case_id})
        made.append(delivery)
    return made


def retry_failed(delivery: ReportDelivery, *, by: Any = None) -> ReportDelivery | None:
    """Put a failed delivery back in the queue (attempts start again), audited, without
    sending it; None if it is not failed (any more: someone else may have retried it)."""
    with transaction.atomic():
        locked = ReportDelivery.objects.select_for_update(of=("self",)).select_related(
            "review__case__trial").filter(pk=delivery.pk).first()
        if locked is None or locked.status != ReportDelivery.Status.FAILED:
            return None
        before = {"status": locked.status, "error": locked.error, "attempts": locked.attempts}
        locked.status, locked.attempts, locked.error = ReportDelivery.Status.QUEUED, 0, ""
        locked.queued_at, locked.sent_at, locked.finished_at = timezone.now(), None, None
        locked.save(update_fields=["status", "attempts", "error", "queued_at", "sent_at",
                                   "finished_at"])
        audit.record(action="report_delivery.retried", obj=locked, actor=by,
                     trial=locked.review.case.trial, before=before,
                     after={"status": locked.status})
    return locked


def lost(*, now: datetime | None = None) -> list[ReportDelivery]:
    """What the periodic sweep sends again: running with an expired lease (its worker died),
    signed reports with no delivery yet (made now), queued and never sent, or sent long ago
    (a retry's countdown included) and not started."""
    now = now or timezone.now()
    found: list[ReportDelivery] = []
    for delivery in ReportDelivery.objects.filter(
            status=ReportDelivery.Status.RUNNING, lease_until__lt=now).select_related(
            "review__case__trial", "node"):
        # One that kills its worker every time must not loop: it fails at max attempts.
        if delivery.attempts >= max_attempts():
            fields = {"status": ReportDelivery.Status.FAILED, "finished_at": now,
                      "error": f"Gave up after {delivery.attempts} attempts; last: its run "
                               "stopped answering."}
        else:
            fields = {"status": ReportDelivery.Status.QUEUED, "sent_at": None,
                      "error": "Taken over: its run stopped answering."}
        with transaction.atomic():
            if not ReportDelivery.objects.filter(
                    pk=delivery.pk, status=ReportDelivery.Status.RUNNING, claim=delivery.claim,
                    lease_until__lt=now).update(claim="", lease_until=None, **fields):
                continue
            for name, value in fields.items():
                setattr(delivery, name, value)
            if delivery.status == ReportDelivery.Status.FAILED:
                audit.record(action="report_delivery.failed", obj=delivery,
                             trial=delivery.review.case.trial, after={
                                 "node": delivery.node.name, "attempts": delivery.attempts,
                                 "error": delivery.error})
        if delivery.status == ReportDelivery.Status.QUEUED:
            found.append(delivery)
    # Sign-offs whose delivery was never made (the process stopped right after the commit):
    # reports signed since the node was set to receive them, never older ones.
    for node in RemoteNode.objects.filter(receives_reports=True):
        for review in Review.objects.filter(
                case__site_id=node.site_id, status=Review.Status.SIGNED,
                signed_at__gte=node.created_at).exclude(deliveries__node=node).select_related(
                "case__trial"):
            found += [row for row in queue_report(review) if row.node_id == node.pk]
    found += ReportDelivery.objects.filter(
        Q(status=ReportDelivery.Status.QUEUED)
        & (Q(sent_at__isnull=True) | Q(sent_at__lt=now - STALE))).exclude(
        pk__in=[d.pk for d in found])
    return found


# Running.

def _claim(pk: int) -> tuple[ReportDelivery | None, str | None, float | None]:
    now = timezone.now()
    with transaction.atomic():
        delivery = ReportDelivery.objects.select_for_update(of=("self",)).select_related(
            "node", "review__case__trial", "review__case__site", "review__senior__user"
        ).filter(pk=pk).first()
        if delivery is None or delivery.status in (ReportDelivery.Status.DONE,
                                                   ReportDelivery.Status.FAILED):
            return delivery, None, None
        if (delivery.status == ReportDelivery.Status.RUNNING and delivery.lease_until
                and delivery.lease_until > now):
            return delivery, None, (delivery.lease_until - now).total_seconds() + 0.5
        delivery.status, delivery.claim = ReportDelivery.Status.RUNNING, uuid.uuid4().hex
        delivery.attempts += 1
        delivery.started_at = delivery.started_at or now
        # Association, store and release each within the node's timeout.
        delivery.lease_until = now + timedelta(seconds=3 * delivery.node.timeout_s) \
            + lease_margin()
        if not delivery.sop_instance_uid:
            delivery.sop_instance_uid = generate_uid()
        delivery.save(update_fields=["status", "claim", "attempts", "started_at",
                                     "lease_until", "sop_instance_uid"])
    return delivery, delivery.claim, None


def _store(delivery: ReportDelivery, claim: str, **fields) -> bool:
    fields.setdefault("claim", "")
    fields.setdefault("lease_until", None)
    stored = ReportDelivery.objects.filter(pk=delivery.pk, claim=claim).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)
    return bool(stored)


def run_delivery(pk: int) -> Outcome:
    """Send one report once; see the module docstring. ``retry_in``: run again later."""
    delivery, claim, wait = _claim(pk)
    if delivery is None:
        return Outcome(pk, "gone")
    if claim is None:
        return Outcome(pk, delivery.status, retry_in=wait)
    node = delivery.node
    try:
        try:
            document = sr.build_sr(delivery.review, node=node,
                                   sop_instance_uid=delivery.sop_instance_uid)
        except sr.OriginalIdsUnreadable as exc:
            raise DeliveryError(f"The study's original identifiers are kept but cannot be "
                                f"read: {exc}. Nothing was sent.", retryable=False) from exc
        if node.protocol == RemoteNode.Protocol.DICOMWEB:
            stow(node, document)
        else:
            c_store(node, document)
    except DeliveryError as exc:
        exc = DeliveryError(scrub(str(exc)), retryable=exc.retryable)
        if exc.retryable and delivery.attempts < max_attempts():
            delay = backoff(delivery.attempts, backoff_base())
            _store(delivery, claim, status=ReportDelivery.Status.QUEUED, error=str(exc),
                   sent_at=timezone.now() + timedelta(seconds=delay))
            logger.warning("Report of case %s to %s: attempt %s failed (%s); retry in %.1f s",
                           delivery.review.case.case_id, node, delivery.attempts, exc, delay)
            return Outcome(pk, ReportDelivery.Status.QUEUED, retry_in=delay)
        reason = str(exc) if not exc.retryable else (
            f"Gave up after {delivery.attempts} attempts; last error: {exc}")
        return _finish(delivery, claim, ReportDelivery.Status.FAILED, reason)
    return _finish(delivery, claim, ReportDelivery.Status.DONE, "")


# A DICOM UID (digits and dots, five parts or more; an IP address has four): a PACS's error
# text may repeat the original study's, which is kept only encrypted.
UID_LIKE = re.compile(r"\b\d+(?:\.\d+){4,}\b")
ERROR_KEPT = 500


def scrub(text: str) -> str:
    """An error from the PACS as it is stored, audited and shown: UIDs masked, cut short."""
    cleaned = UID_LIKE.sub("<UID>", text)
    return cleaned if len(cleaned) <= ERROR_KEPT else cleaned[:ERROR_KEPT - 1] + "…"


def _finish(delivery: ReportDelivery, claim: str, status: str, error: str) -> Outcome:
    with transaction.atomic():
        if _store(delivery, claim, status=status, error=error, finished_at=timezone.now()):
            action = "done" if status == ReportDelivery.Status.DONE else "failed"
            audit.record(action=f"report_delivery.{action}", obj=delivery,
                         trial=delivery.review.case.trial, after={
                             "node": delivery.node.name, "case": delivery.review.case.case_id,
                             "attempts": delivery.attempts,
                             "sop_instance_uid": delivery.sop_instance_uid, "error": error})
    if error:
        logger.warning("Report of case %s to %s failed: %s", delivery.review.case.case_id,
                       delivery.node, error)
    return Outcome(delivery.pk, status)


# Sending.

def c_store(node: RemoteNode, document: Dataset) -> None:
    """C-STORE the document to a DIMSE node; ``DeliveryError`` unless it is stored."""
    from .dimse import AE

    where = f"{node.ae_title}@{node.host}:{node.port}"
    ae = AE(ae_title=settings.DICOM_CALLING_AE_TITLE)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = node.timeout_s
    ae.connection_timeout = node.timeout_s
    ae.add_requested_context(document.SOPClassUID,
                             [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if assoc.is_rejected:
        raise DeliveryError(f"The PACS {where} rejected the association from "
                            f"{settings.DICOM_CALLING_AE_TITLE} (is our AE title known to "
                            "it?).", retryable=True)
    if not assoc.is_established:
        raise DeliveryError(f"Could not connect to the PACS {where}: no association "
                            "(connection refused, timed out or aborted).", retryable=True)
    try:
        status = assoc.send_c_store(document)
    finally:
        if assoc.is_established:
            assoc.release()
    if "Status" not in status:
        raise DeliveryError(f"The PACS {where} did not answer the C-STORE (timeout or "
                            "association aborted).", retryable=True)
    code = int(status.Status)
    if code == 0x0000 or code in (0xB000, 0xB006, 0xB007):  # success, or with a warning
        return
    comment = str(status.get("ErrorComment", "") or "").strip()
    detail = f"C-STORE status 0x{code:04X}" + (f": {comment}" if comment else "")
    # Out of resources (A7xx) and a processing failure may pass; a refusal will not.
    retryable = (code & 0xFF00) == 0xA700 or code == 0x0110
    raise DeliveryError(f"The PACS {where} did not store the report ({detail}).",
                        retryable=retryable)


def stow(node: RemoteNode, document: Dataset) -> None:
    """STOW-RS the document to a DICOMweb node; ``DeliveryError`` unless it is stored."""
    from dicomweb_client import DICOMwebClient

    headers = {}
    if node.auth_env:
        value = secrets.read(node.auth_env) or ""
        if not value:
            raise DeliveryError(f"The environment variable {node.auth_env} (the node's "
                                "Authorization header) is not set.", retryable=False)
        headers["Authorization"] = value
    client = DICOMwebClient(url=node.base_url, headers=headers, timeout=node.timeout_s)
    client.set_http_retry_params(retry=False)  # our own retries, with their backoff
    where = node.base_url
    try:
        answer = client.store_instances([document])
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else 0
        body = (exc.response.text if exc.response is not None else "")[:200].strip()
        raise DeliveryError(f"STOW-RS to {where} answered HTTP {code}"
                            + (f": {body}" if body else "."),
                            retryable=code >= 500 or code in RETRY_HTTP) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise DeliveryError(f"Could not reach {where} (connection refused or timed out): "
                            f"{type(exc).__name__}.", retryable=True) from exc
    except requests.RequestException as exc:
        raise DeliveryError(f"STOW-RS to {where} failed: {exc}", retryable=True) from exc
    failed = answer.get("FailedSOPSequence") if answer is not None else None
    if failed:
        reason = failed[0].get("FailureReason", "")
        raise DeliveryError(f"STOW-RS to {where} refused the report (failure reason "
                            f"{reason}).", retryable=False)
