"""A small trial ready for reading: two allocated readers (one per arm), a senior, enrolled
cases with real (synthetic) DICOM images, assigned, with demo-backend AI drafts made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drafting.models import ModelEndpoint
from drafting.tasks import queue_draft
from tests.support.factories import MembershipFactory, SiteFactory, TrialFactory, UserFactory
from trial.assignment import assign_cases
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import Arm, Assignment, Case, Image, Membership, Role, Trial
from trial.randomization import allocate_all, generate_list


@dataclass
class ReadWorld:
    trial: Trial
    readers: dict[str, Membership]  # by arm
    senior: Membership
    cases: list[Case]

    def assignment(self, arm: str, index: int = 0) -> Assignment:
        return Assignment.objects.filter(reader=self.readers[arm]).order_by("position")[index]


def build_read_world(folder: Path, *, cases: int = 2, endpoint: bool = True,
                     **trial_fields) -> ReadWorld:
    trial = TrialFactory(block_sizes=[2], **trial_fields)
    site = SiteFactory(trial=trial)
    coordinator = UserFactory()
    MembershipFactory(trial=trial, user=coordinator, role=Role.COORDINATOR, site=site)
    for _ in range(2):
        MembershipFactory(trial=trial, role=Role.READER, site=site)
    senior = MembershipFactory(trial=trial, role=Role.SENIOR, site=site)
    generate_list(trial, by=coordinator, seed_source=lambda: 7)
    allocate_all(trial, by=coordinator)
    if endpoint:
        ModelEndpoint.objects.create(trial=trial, name="demo", backend=ModelEndpoint.Backend.DEMO)
    for i in range(cases):
        make_cxr(folder / f"{i}.dcm", seed=i, rows=64, columns=48, accession=f"ACC{i}",
                 patient_id=f"P{i}")
    import_path(folder, trial=trial, site=site, by=coordinator)
    made = list(Case.objects.filter(trial=trial).order_by("case_id"))
    for case in made:
        case.status = Case.Status.ENROLLED
        case.chief_complaint, case.history, case.lab_results = "cough, fever", "3 days", "CRP 80"
        case.save()
        queue_draft(case)  # demo backend, in-process: done at once
    assign_cases(trial, by=coordinator, seed=3)
    readers = {m.allocation_slot.arm: m for m in
               Membership.objects.filter(trial=trial, role=Role.READER)
               .select_related("allocation_slot", "user")}
    assert set(readers) == {Arm.AI_ASSISTED, Arm.SCP}
    return ReadWorld(trial=trial, readers=readers, senior=senior, cases=made)


def imported_image(path: Path) -> Image:
    """The image of one DICOM file imported into a new trial (the viewer's files made)."""
    site = SiteFactory(trial=TrialFactory())
    job = import_path(path, trial=site.trial, site=site)
    assert job.imported == 1, job.report
    return Image.objects.get(case__trial=site.trial)
