"""The signed final report as a FHIR ``DiagnosticReport`` (R4B, which reads as R4), for sites
whose reporting system takes FHIR rather than DICOM SR.

Pseudonymous only: the subject is the trial's case id (a logical reference by identifier),
the imaging study its de-identified Study Instance UID. The final report alone, never the
readings, their arms or the AI drafts.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from reader.texts import report_text

from .sr import signature_of

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"


def _fhir_id(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "-", value)[:64]


def diagnostic_report(review: Any) -> dict:
    """The ``DiagnosticReport`` of a signed ``review``, as JSON-ready data (validated by
    fhir.resources on the way)."""
    case = review.case
    trial = case.trial
    signer, _ = signature_of(review)
    text = report_text(review.findings, review.impression)
    system = f"urn:cxr-trials:{trial.slug}"
    report = DiagnosticReport.model_validate({
        "resourceType": "DiagnosticReport",
        "id": _fhir_id(f"{trial.slug}-{case.case_id}"),
        "identifier": [{"system": f"{system}:final-report", "value": case.case_id}],
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "RAD",
                                  "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "18748-4",
                             "display": "Diagnostic imaging study"}],
                 "text": "Final report"},
        "subject": {"type": "Patient", "display": f"Trial case {case.case_id}",
                    "identifier": {"system": f"{system}:case", "value": case.case_id}},
        "imagingStudy": [{"type": "ImagingStudy", "identifier": {
            "system": "urn:dicom:uid", "value": f"urn:oid:{case.study_uid}"}}],
        "issued": review.signed_at.isoformat(),
        "resultsInterpreter": [{"type": "Practitioner", "display": signer}],
        "conclusion": review.impression.strip(),
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "title": "Final report",
                           "data": base64.b64encode(text.encode()).decode()}],
    })
    return report.model_dump(mode="json", by_alias=True, exclude_none=True)
