"""Who may call which API endpoint: a table of (role, endpoint, expected status).

People with no role in a trial get 404 for everything under it (trial B's coordinator here);
members whose role does not allow the request get 403; anonymous requests get 403 (session
authentication comes first, so DRF answers 403 rather than 401).
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.support.dicom_files import identified_cxr
from tests.support.trial_world import ROLES, World
from trial.models import Role

A = "/api/trials/trial-a"
ALL = set(ROLES) - {"anonymous"}
MEMBERS = {"reader", "senior", "rater", "statistician", "coordinator", "superuser"}
# Blinded raters get no set-up records (hole 9 of the security audit).
NOT_RATERS = MEMBERS - {"rater"}


def expect(ok: set[str], code: int = 200) -> dict[str, int]:
    """``code`` for the roles in ``ok``; 404 for a stranger to trial A; 403 otherwise."""
    table = {role: (code if role in ok else 403) for role in ROLES}
    if "other_coordinator" not in ok:
        table["other_coordinator"] = 404
    table["anonymous"] = 403
    return table


COORD = {"coordinator", "superuser"}
COORD_STAT = COORD | {"statistician"}

GETS = {
    "trials": ("/api/trials/", {**expect(ALL), "other_coordinator": 200}),
    "trial": (f"{A}/", expect(MEMBERS)),
    "sites": (f"{A}/sites/", expect(NOT_RATERS)),
    "site": (f"{A}/sites/{{site}}/", expect(NOT_RATERS)),
    "criteria": (f"{A}/criteria/", expect(NOT_RATERS)),
    "members": (f"{A}/members/", expect(COORD)),
    "member": (f"{A}/members/{{reader}}/", expect(COORD)),
    "cases": (f"{A}/cases/", expect(COORD_STAT)),
    "case": (f"{A}/cases/{{case}}/", expect(COORD_STAT)),
    "images": (f"{A}/images/", expect(COORD)),
    "image": (f"{A}/images/{{image}}/", expect(COORD)),
    "import jobs": (f"{A}/import-jobs/", expect(COORD)),
    "import job": (f"{A}/import-jobs/{{job}}/", expect(COORD)),
    "allocations": (f"{A}/allocations/", expect(COORD_STAT)),
    "randomization": (f"{A}/randomization/", expect(COORD_STAT)),
    "assignments": (f"{A}/assignments/", expect(COORD | {"reader"})),
    "audit": (f"{A}/audit/", expect(COORD)),
    "model endpoints": (f"{A}/model-endpoints/", expect(COORD_STAT)),
    "model endpoint": (f"{A}/model-endpoints/{{endpoint}}/", expect(COORD_STAT)),
    "drafts": (f"{A}/drafts/", expect(COORD_STAT)),
    "draft": (f"{A}/drafts/{{draft}}/", expect(COORD_STAT)),
}

CSV = "position,arm\n1,scp\n2,ai_assisted\n"
# (method, url, body, expected); the allowed outcome is the service's answer
WRITES = {
    "create trial": ("post", "/api/trials/", {"name": "New", "slug": "new-trial"},
                     {**{r: 403 for r in ROLES}, "superuser": 201}),
    "update trial": ("patch", f"{A}/", {"registry_id": "NCT00000001"}, expect(COORD)),
    "add site": ("post", f"{A}/sites/", {"code": "A2", "name": "Hospital A2"},
                 expect(COORD, 201)),
    "add criterion": ("post", f"{A}/criteria/", {"kind": "exclusion", "code": "pregnant",
                                                  "text": "Pregnant"}, expect(COORD, 201)),
    "add member": ("post", f"{A}/members/", {"username": "reader2-a", "role": "rater"},
                   expect(COORD, 201)),
    "add case": ("post", f"{A}/cases/", {"case_id": "A-0002", "site": "A1", "age": 40},
                 expect(COORD, 201)),
    "edit case": ("patch", f"{A}/cases/{{case}}/", {"age": 41}, expect(COORD)),
    "screen case": ("post", f"{A}/cases/{{case}}/screen/",
                    {"answers": {"suspected_disease": True}}, expect(COORD)),
    "record consent": ("post", f"{A}/cases/{{case}}/consent/", {}, expect(COORD)),
    "enrol case": ("post", f"{A}/cases/{{case}}/enrol/", {}, expect(COORD, 409)),
    "exclude case": ("post", f"{A}/cases/{{case}}/exclude/", {"reason": "Motion artefact"},
                     expect(COORD)),
    "allocate reader": ("post", f"{A}/allocations/", {"membership": "{reader2}"},
                        expect(COORD, 201)),
    "allocate all": ("post", f"{A}/allocations/allocate-all/", {}, expect(COORD, 201)),
    "generate list": ("post", f"{A}/randomization/generate/", {}, expect(COORD, 409)),
    "import list": ("post", f"{A}/randomization/import/", "csv", expect(COORD, 409)),
    "upload images": ("post", f"{A}/images/", "dicom", expect(COORD, 202)),
    "assign cases": ("post", f"{A}/assign/", {}, expect(COORD, 201)),
    "delete criterion": ("delete", f"{A}/criteria/{{criterion}}/", None, expect(COORD, 204)),
}


def fill(template: str, world: World) -> str:
    return template.format(site=world.site.pk, reader=world.reader.pk, case=world.case.pk,
                           image=world.image.pk, reader2=world.reader2.pk,
                           criterion=world.criterion.pk, job=world.job.pk,
                           endpoint=world.endpoint.pk, draft=world.draft.pk)


def api(world: World, role: str) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(world.users[role])
    return client




@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", GETS)
def test_api_get_access(world: World, endpoint: str, role: str) -> None:
    url, expected = GETS[endpoint]
    response = api(world, role).get(fill(url, world))
    assert response.status_code == expected[role], (endpoint, role, response.content[:300])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("write", WRITES)
def test_api_write_access(world: World, write: str, role: str, tmp_path,
                          django_capture_on_commit_callbacks) -> None:
    method, url, body, expected = WRITES[write]
    client = api(world, role)
    if write == "assign cases":  # something to assign: an enrolled case, both arms allocated
        _enrolled_case_and_readers(world)
    if body == "csv":
        from django.core.files.uploadedfile import SimpleUploadedFile

        upload = SimpleUploadedFile("list.csv", CSV.encode(), content_type="text/csv")
        response = client.post(fill(url, world), {"file": upload}, format="multipart")
    elif body == "dicom":
        path, _ = identified_cxr(tmp_path / "cxr.dcm")
        with path.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
            response = client.post(fill(url, world), {"site": "A1", "files": [handle]},
                                   format="multipart")
    else:
        if isinstance(body, dict):
            body = {k: (int(fill(v, world)) if isinstance(v, str) and v.startswith("{") else v)
                    for k, v in body.items()}
        response = getattr(client, method)(fill(url, world), body, format="json")
    assert response.status_code == expected[role], (write, role, response.content[:300])
    if response.status_code >= 400:
        assert "detail" in response.json()


def _enrolled_case_and_readers(world: World) -> None:
    from tests.support.factories import CaseFactory, MembershipFactory, UserFactory
    from trial import randomization
    from trial.models import Case, Image

    for n in range(3):  # allocate readers until both arms are present
        reader = MembershipFactory(trial=world.trial, user=UserFactory(username=f"extra-{n}"),
                                   role=Role.READER, site=world.site)
        randomization.allocate(reader, by=world.users["superuser"])
    case = CaseFactory(trial=world.trial, site=world.site, case_id="A-0100")
    image = world.image
    Image.objects.create(**{
        f.name: getattr(image, f.name) for f in Image._meta.concrete_fields
        if f.name not in ("id", "case", "source_key", "imported_at")
    }, case=case, source_key="z" * 64)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ENROLLED)
