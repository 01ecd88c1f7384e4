"""A trial, a site, cases with a real imported synthetic DICOM, and a model endpoint (no tests).

Used by the AI-draft tests (in-process and real-worker). Every case is made the way production
makes it: ``make_cxr`` writes a synthetic radiograph, ``import_path`` de-identifies and stores
it (a screened case); the clinical record is then filled in and, unless asked otherwise, the
case is marked enrolled directly (enrolment itself is tested in ``test_draft_queueing``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from drafting.models import ModelEndpoint
from tests.support.factories import SiteFactory, TrialFactory
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import Case, Site, Trial

CLINICAL = {
    "chief_complaint": "Productive cough and fever for 6 days",
    "history": "Type 2 diabetes; ex-smoker, 20 pack-years",
    "lab_results": "WBC 14.1 x10^9/L, CRP 112 mg/L",
}


@dataclass
class DraftWorld:
    trial: Trial
    site: Site
    case: Case
    endpoint: ModelEndpoint


def make_endpoint(trial: Trial, *, base_url: str = "", **fields) -> ModelEndpoint:
    """An active OpenAI-compatible endpoint at ``base_url`` with fast retries (0.01 s backoff)."""
    values = {
        "name": "fake model", "backend": ModelEndpoint.Backend.OPENAI, "base_url": base_url,
        "model_name": "fake-cxr-model", "timeout_s": 5.0, "retry_backoff_s": 0.01,
        "max_attempts": 3, **fields,
    }
    return ModelEndpoint.objects.create(trial=trial, **values)


def imported_case(trial: Trial, site: Site, folder: Path, *, seed: int = 1, rows: int = 96,
                  columns: int = 96, enrolled: bool = True, **clinical: str) -> Case:
    """A case made by importing one synthetic DICOM from ``folder``, with a clinical record."""
    path = make_cxr(Path(folder) / f"cxr-{seed}.dcm", seed=seed, rows=rows, columns=columns)
    job = import_path(path, trial=trial, site=site)
    (entry,) = job.report
    assert entry["status"] == "imported", entry
    case = Case.objects.get(trial=trial, case_id=entry["case"])
    for field, value in {**CLINICAL, **clinical}.items():
        setattr(case, field, value)
    if enrolled:
        case.status = Case.Status.ENROLLED
    case.save()
    return case


def draft_world(folder: Path, base_url: str = "", **endpoint_fields) -> DraftWorld:
    """A trial and site, one enrolled imported case, and an endpoint at ``base_url``.

    Typically ``draft_world(tmp_path / "src", fake_model.url)``; ``endpoint_fields`` override
    the endpoint's (e.g. ``backend="demo"``, ``max_attempts=2``).
    """
    trial = TrialFactory()
    site = SiteFactory(trial=trial)
    case = imported_case(trial, site, folder)
    endpoint = make_endpoint(trial, base_url=base_url, **endpoint_fields)
    return DraftWorld(trial=trial, site=site, case=case, endpoint=endpoint)


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dead_url() -> str:
    """A model base URL whose server is down."""
    return f"http://127.0.0.1:{closed_port()}/v1"
