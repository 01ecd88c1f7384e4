"""The signed final report as a DICOM SR document, and the study identifiers it references.

A **Basic Text SR**: highdicom 0.28 builds Enhanced, Comprehensive and Comprehensive 3D SR
documents but has no Basic Text SR class, so the document is built as an Enhanced SR (its
public API) and given the Basic Text SR storage class (``as_basic_text``): the two IODs have
the same modules and differ only in the value types allowed, and this content uses none
beyond Basic Text's (CONTAINER, CODE, PNAME, TEXT; checked). After TID 2000 "Basic
Diagnostic Imaging Report": the observer (person, the signer's printed name) and two
sections, Findings and Impressions, each one TEXT item. COMPLETE, FINAL and VERIFIED by the
signer at the time of the signature.

The study it references: where the site allows it (its node's ``keep_original_uids``) and the
import kept them (``UidLink``, a Fernet token under ``PACS_UID_KEY``), the original Study
Instance UID and Accession Number, so the site's PACS files it with the study; otherwise the
trial's pseudonymous ones (the de-identified study UID, the case id as accession number).
The patient is always the case id: no name, birth date or sex, and never anything of the
readings (arms, AI drafts).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import highdicom as hd
import pydicom
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import BasicTextSRStorage, generate_uid
from pydicom.valuerep import DT

from trial import audit
from trial.models import Case, Signature, Site
from trial.signatures import printed_name, signatures_of

from .models import RemoteNode, UidLink

logger = logging.getLogger(__name__)

REPORT_TITLE = hd.sr.CodedConcept("18748-4", "LN", "Diagnostic Imaging Report")
MANUFACTURER = "CXR reader-study platform"
SERIES_NUMBER = 999
CHARSET = "ISO_IR 192"  # UTF-8: printed names and report texts may be in any language


class OriginalIdsUnreadable(Exception):
    """The case's original identifiers are kept but cannot be decrypted (no or another key)."""


@dataclass(frozen=True)
class StudyRef:
    """The study as the report references it; ``original``: the site's own identifiers."""

    study_uid: str
    accession: str
    original: bool


# Keeping the original identifiers (at import) and reading them back (when sending).

def _fernet() -> Fernet | None:
    key = getattr(settings, "PACS_UID_KEY", "") or ""
    return Fernet(key.encode() if isinstance(key, str) else key) if key else None


def keep_original_ids(case: Case, ds: Dataset, site: Site) -> bool:
    """Store the case's original study UID and accession number, encrypted, if its site has a
    node that allows it and ``PACS_UID_KEY`` is set; never otherwise. True if stored now.

    Runs inside the import's transaction (``trial.signals.before_deidentify``); the clear
    values go nowhere but into the token (not the log, not the audit event)."""
    if not getattr(settings, "PACS_UID_KEY", ""):
        return False
    nodes = list(RemoteNode.objects.filter(site=site, keep_original_uids=True)
                 .values_list("name", flat=True))
    if not nodes or UidLink.objects.filter(case=case).exists():
        return False
    try:
        fernet = _fernet()
    except ValueError:
        logger.error("PACS_UID_KEY is not a valid Fernet key: the original identifiers of "
                     "case %s are not kept", case.case_id)
        return False
    clear = json.dumps({"study_uid": str(ds.get("StudyInstanceUID", "") or ""),
                        "accession": str(ds.get("AccessionNumber", "") or "")})
    link = UidLink.objects.create(case=case, token=fernet.encrypt(clear.encode()))
    audit.record(action="case.original_ids_kept", obj=case, trial=case.trial,
                 after={"uid_link": link.pk, "nodes": nodes, "encrypted": True})
    return True


def original_ids(case: Case) -> tuple[str, str] | None:
    """(original study UID, accession number) of the case, or None if not kept."""
    link = UidLink.objects.filter(case=case).first()
    if link is None:
        return None
    try:
        fernet = _fernet()
        if fernet is None:
            raise OriginalIdsUnreadable("PACS_UID_KEY is not set")
        data = json.loads(fernet.decrypt(bytes(link.token)))
    except (InvalidToken, ValueError) as exc:
        raise OriginalIdsUnreadable(
            "the key in PACS_UID_KEY does not decrypt them (was it changed?)") from exc
    return data["study_uid"], data.get("accession", "")


def study_ref(case: Case, node: RemoteNode) -> StudyRef:
    """How the report sent to ``node`` references the case's study (see the module docstring).

    Raises ``OriginalIdsUnreadable`` where the originals are kept but cannot be read: sending
    pseudonymous ids instead would file the report where the site cannot find it."""
    if node.keep_original_uids:
        kept = original_ids(case)
        if kept is not None and kept[0]:
            return StudyRef(study_uid=kept[0], accession=kept[1][:16], original=True)
    return StudyRef(study_uid=case.study_uid, accession=case.case_id[:16], original=False)


# The document.

def person_name(name: str) -> str:
    """A printed name as a DICOM PN: "Jane Q Smith" -> "Smith^Jane Q"; one word -> "word^"."""
    name = " ".join(name.replace("^", " ").split())
    given, _, family = name.rpartition(" ")
    return f"{family}^{given}" if given else f"{family}^"


def signature_of(review: Any) -> tuple[str, Any]:
    """(printed name, time) of the review's final-report signature (as its page shows it)."""
    for signature in signatures_of(review):
        if signature.meaning == Signature.Meaning.FINAL_REPORT:
            return signature.printed_name, signature.signed_at
    return printed_name(review.senior.user), review.signed_at


def _image_evidence(case: Case) -> list[tuple[str, str, str]]:
    """(SOP class, series, SOP instance) UIDs of the case's de-identified images."""
    found = []
    for image in case.images.order_by("pk"):
        try:
            with image.file.open("rb") as handle:
                header = pydicom.dcmread(handle, stop_before_pixels=True,
                                         specific_tags=["SOPClassUID"])
            found.append((str(header.SOPClassUID), image.series_uid, image.sop_uid))
        except Exception:  # a missing file: the study is still referenced by its UID
            logger.warning("Image %s of case %s not referenced in its report", image.pk,
                           case.case_id, exc_info=True)
    return found


def _patient_and_study(case: Case, ref: StudyRef) -> Dataset:
    ds = Dataset()
    ds.PatientID = case.case_id
    ds.PatientName = f"{case.case_id}^"
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = ref.study_uid
    ds.AccessionNumber = ref.accession
    ds.StudyID = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    return ds


def _evidence(case: Case, ref: StudyRef) -> tuple[list[Dataset], bool]:
    """Datasets highdicom takes the patient and study from, and whether they are real
    references: the de-identified images only under the pseudonymous study UID (the site's
    own instance UIDs are never kept)."""
    images = [] if ref.original else _image_evidence(case)
    if not images:
        images, real = [("1.2.840.10008.5.1.4.1.1.7", generate_uid(), generate_uid())], False
    else:
        real = True
    evidence = []
    for sop_class, series, sop in images:
        item = _patient_and_study(case, ref)
        item.SOPClassUID, item.SeriesInstanceUID, item.SOPInstanceUID = sop_class, series, sop
        evidence.append(item)
    return evidence, real


def _content(findings: str, impression: str, signer: str) -> hd.sr.ContainerContentItem:
    root = hd.sr.ContainerContentItem(name=REPORT_TITLE, template_id="2000")
    observer = [
        hd.sr.CodeContentItem(name=codes.DCM.ObserverType, value=codes.DCM.Person,
                              relationship_type=hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT),
        hd.sr.PnameContentItem(name=codes.DCM.PersonObserverName, value=person_name(signer),
                               relationship_type=hd.sr.RelationshipTypeValues.HAS_OBS_CONTEXT),
    ]
    sections = []
    for heading, item, text in ((codes.DCM.Findings, codes.DCM.Finding, findings),
                                (codes.DCM.Impressions, codes.DCM.Impression, impression)):
        section = hd.sr.ContainerContentItem(
            name=heading, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
        section.ContentSequence = hd.sr.ContentSequence([hd.sr.TextContentItem(
            name=item, value=text.strip() or "None.",
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)])
        sections.append(section)
    root.ContentSequence = hd.sr.ContentSequence([*observer, *sections])
    return root


def build_sr(review: Any, *, node: RemoteNode, sop_instance_uid: str) -> Dataset:
    """The SR document of a signed ``review`` as sent to ``node`` (see the module docstring).

    ``sop_instance_uid`` is the delivery's own, the same at every attempt: a report sent
    twice (a retry after a lost answer) is one instance in the PACS."""
    case = review.case
    ref = study_ref(case, node)
    signer, signed_at = signature_of(review)
    evidence, real = _evidence(case, ref)
    organization = case.site.name or case.site.code
    sr = hd.sr.EnhancedSR(
        evidence=evidence,
        content=_content(review.findings, review.impression, signer),
        series_instance_uid=generate_uid(entropy_srcs=["series", sop_instance_uid]),
        series_number=SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=organization[:64],
        verifying_observer_name=person_name(signer),
        verifying_organization=organization[:64],
        specific_character_set=CHARSET,
    )
    if not real:
        del sr.CurrentRequestedProcedureEvidenceSequence
    sr.SeriesDescription = "Final report"
    sr.VerifyingObserverSequence[0].VerificationDateTime = DT(signed_at)
    local = signed_at.astimezone()
    sr.ContentDate, sr.ContentTime = local.strftime("%Y%m%d"), local.strftime("%H%M%S")
    request = Dataset()  # the order the report answers: the study as the site knows it
    request.StudyInstanceUID = ref.study_uid
    request.AccessionNumber = ref.accession
    for keyword in ("ReferencedStudySequence", "IssuerOfAccessionNumberSequence",
                    "RequestedProcedureCodeSequence"):
        setattr(request, keyword, [])
    for keyword in ("PlacerOrderNumberImagingServiceRequest",
                    "FillerOrderNumberImagingServiceRequest", "RequestedProcedureID",
                    "RequestedProcedureDescription"):
        setattr(request, keyword, "")
    sr.ReferencedRequestSequence = [request]
    return as_basic_text(sr)


BASIC_TEXT_VALUE_TYPES = frozenset({"CONTAINER", "TEXT", "CODE", "DATETIME", "DATE", "TIME",
                                    "UIDREF", "PNAME", "COMPOSITE", "IMAGE", "WAVEFORM"})


def as_basic_text(sr: Dataset) -> Dataset:
    """``sr`` as a Basic Text SR (PS3.3 A.35.1): its storage class, once every content item
    is of a value type that IOD allows (``ValueError`` otherwise)."""
    def value_types(items) -> set[str]:
        found = set()
        for item in items:
            found.add(str(item.ValueType))
            found |= value_types(item.get("ContentSequence", []))
        return found

    wrong = value_types([sr]) - BASIC_TEXT_VALUE_TYPES
    if wrong:
        raise ValueError(f"Basic Text SR does not allow {sorted(wrong)} content items")
    sr.SOPClassUID = BasicTextSRStorage
    sr.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    return sr
