"""The small world the access-table tests run in (no tests here; imported by the table tests).

Trial A has one of each role, a site, a criterion, a case with an image, an import job, a
generated randomisation list (known seed) with one reader allocated and one not, an assignment,
audit events, an active (demo) model endpoint and a done draft of the case, whose text
(``DRAFT_TEXT``) must never reach a reader, senior or rater. Trial B has its own coordinator,
who must see none of A.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.test import Client

from drafting.models import Draft, ModelEndpoint
from tests.support.factories import (
    PASSWORD,
    CaseFactory,
    CriterionFactory,
    MembershipFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from trial import audit, randomization
from trial.models import (
    Assignment,
    AuditEvent,
    Case,
    Image,
    ImportJob,
    Membership,
    RandomizationList,
    Role,
    Site,
    Trial,
)

SEED = 8_675_309_123_457  # distinctive: must never appear in a page or a response
DRAFT_TEXT = "Draftfinding-7Q3 left apical pneumothorax"  # the world's AI draft findings
ROLES = ("anonymous", "reader", "senior", "rater", "statistician", "coordinator",
         "other_coordinator", "superuser")


@dataclass
class World:
    trial: Trial
    other: Trial
    site: Site
    users: dict[str, object]
    reader: Membership  # allocated
    reader2: Membership  # not allocated
    case: Case
    image: Image
    job: ImportJob
    rlist: RandomizationList
    assignment: Assignment
    event: AuditEvent
    criterion: object = None
    endpoint: ModelEndpoint | None = None
    draft: Draft | None = None
    ids: dict[str, int] = field(default_factory=dict)

    def client(self, role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(self.users[role])
        return client


def build_world(*, staff_roles: bool = False) -> World:
    """``staff_roles``: make readers, seniors, raters and statisticians staff too, to prove the
    admin refuses them for their role and not merely for lacking ``is_staff``."""
    trial = TrialFactory(slug="trial-a", name="Trial A")
    other = TrialFactory(slug="trial-b", name="Trial B")
    site = SiteFactory(trial=trial, code="A1", name="Hospital A1")
    users: dict[str, object] = {}
    members: dict[str, Membership] = {}
    for role in (Role.READER, Role.SENIOR, Role.RATER, Role.STATISTICIAN, Role.COORDINATOR):
        user = UserFactory(username=f"{role}-a", is_staff=staff_roles or role == Role.COORDINATOR)
        users[role] = user
        members[role] = MembershipFactory(trial=trial, user=user, role=role, site=site)
    users["other_coordinator"] = UserFactory(username="coordinator-b", is_staff=True)
    MembershipFactory(trial=other, user=users["other_coordinator"], role=Role.COORDINATOR,
                      site=SiteFactory(trial=other, code="B1"))
    users["superuser"] = get_user_model().objects.create_superuser(
        "root", "root@example.org", PASSWORD
    )
    reader2 = MembershipFactory(trial=trial, user=UserFactory(username="reader2-a"),
                                role=Role.READER, site=site)
    criterion = CriterionFactory(trial=trial, code="suspected_disease", text="Suspected disease")
    case = CaseFactory(trial=trial, site=site, case_id="A-0001")
    coordinator = users[Role.COORDINATOR]
    job = ImportJob.objects.create(trial=trial, site=site, created_by=coordinator,
                                   source="/tmp/upload", total=1, processed=1, imported=1,
                                   status=ImportJob.Status.DONE)
    image = Image.objects.create(
        case=case, file="dicom/trial-a/A-0001/1.dcm", source_key="k" * 64, sop_uid="1.2.3",
        series_uid="1.2", modality="DX", view_position="PA", rows=512, columns=512,
        bits_stored=12, photometric="MONOCHROME2", transfer_syntax="1.2.840.10008.1.2.1",
        file_size=1000, sha256="0" * 64, synthetic=True, import_job=job,
    )
    rlist = randomization.generate_list(trial, by=coordinator, seed_source=lambda: SEED)
    slot = randomization.allocate(members[Role.READER], by=coordinator)
    assignment = Assignment.objects.create(case=case, reader=members[Role.READER], arm=slot.arm,
                                           position=1, assigned_by=coordinator)
    event = audit.record(action="test.event", obj=case, actor=coordinator)
    endpoint = ModelEndpoint.objects.create(trial=trial, name="World demo endpoint",
                                            backend=ModelEndpoint.Backend.DEMO)
    draft = Draft.objects.create(
        case=case, endpoint=endpoint, fingerprint=endpoint.fingerprint, config=endpoint.config(),
        backend=endpoint.backend, status=Draft.Status.DONE, attempts=1, findings=DRAFT_TEXT,
        impression="Small left pneumothorax.", raw_response=f"FINDINGS: {DRAFT_TEXT}",
        model_reported="demo-backend (not a model)", queued_at=case.created_at,
    )
    return World(
        trial=trial, other=other, site=site, users=users, reader=members[Role.READER],
        reader2=reader2, case=case, image=image, job=job, rlist=rlist, assignment=assignment,
        event=event, criterion=criterion, endpoint=endpoint, draft=draft,
    )
