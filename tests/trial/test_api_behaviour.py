"""What the API does: token auth, schema, service errors as 400/409, scoping, the case flow."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.factories import CaseFactory, SiteFactory, UserFactory
from tests.support.trial_world import World
from trial.models import AuditEvent, Case, Membership, Trial

A = "/api/trials/trial-a"




def as_(world: World, role: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def test_token_authentication_works_and_a_wrong_token_does_not(world: World) -> None:
    token = Token.objects.create(user=world.users["statistician"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/trials/")
    assert response.status_code == 200
    assert [t["slug"] for t in response.json()["results"]] == ["trial-a"]
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/trials/").status_code in (401, 403)


def test_session_writes_need_the_csrf_token(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.users["coordinator"])
    assert client.get(f"{A}/sites/").status_code == 200
    response = client.post(f"{A}/sites/", {"code": "A7", "name": "x"}, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_openapi_schema_is_served_to_an_authenticated_user(world: World) -> None:
    client = Client()
    client.force_login(world.users["reader"])
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/trials/{trial_slug}/allocations/" in response.content


def test_openapi_schema_is_refused_to_an_anonymous_visitor(db) -> None:
    assert Client().get("/api/schema/").status_code in (401, 403)


def test_openapi_schema_generates_without_warnings(db, tmp_path) -> None:
    out = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--format", "openapi-json", "--file", str(out),
                 stdout=io.StringIO())
    schemas = json.loads(out.read_text())["components"]["schemas"]
    assert "seed" not in schemas["Randomization"]["properties"]
    assert "deid_salt" not in schemas["Trial"]["properties"]


def test_a_superuser_creates_a_trial_and_it_is_audited(world: World) -> None:
    response = as_(world, "superuser").post(
        "/api/trials/", {"name": "Pilot", "slug": "pilot", "block_sizes": [2, 4]}, format="json"
    )
    assert response.status_code == 201 and response.json()["slug"] == "pilot"
    event = AuditEvent.objects.get(action="trial.created")
    assert "deid_salt" not in event.after


def test_trial_design_is_validated_by_the_model(world: World) -> None:
    """In set-up (trial B: no list yet); trial A's design is frozen (``test_integrity``)."""
    response = as_(world, "other_coordinator").patch("/api/trials/trial-b/",
                                                     {"block_sizes": [3]}, format="json")
    assert response.status_code == 400 and "block_sizes" in response.json()


def test_readers_see_the_trial_but_not_its_design(world: World) -> None:
    reader = as_(world, "reader").get(f"{A}/").json()
    assert reader["my_roles"] == ["reader"] and "block_sizes" not in reader
    assert "block_sizes" in as_(world, "statistician").get(f"{A}/").json()


def test_another_trials_objects_are_not_found_through_this_trial(world: World) -> None:
    other_case = CaseFactory(trial=world.other, site=world.other.sites.get())
    client = as_(world, "coordinator")
    assert client.get(f"{A}/cases/{other_case.pk}/").status_code == 404
    assert client.post(f"{A}/cases/{other_case.pk}/consent/").status_code == 404
    assert client.get("/api/trials/trial-b/cases/").status_code == 404
    response = client.post(f"{A}/cases/", {"case_id": "Z", "site": "B1"}, format="json")
    assert response.status_code == 400 and "site" in response.json()


def test_allocating_twice_is_409_with_the_services_message(world: World) -> None:
    client = as_(world, "coordinator")
    first = client.post(f"{A}/allocations/", {"membership": world.reader2.pk}, format="json")
    assert first.status_code == 201
    assert first.json()["reader"] == "reader2-a" and first.json()["arm"] in ("ai_assisted", "scp")
    again = client.post(f"{A}/allocations/", {"membership": world.reader2.pk}, format="json")
    assert again.status_code == 409 and "already allocated" in again.json()["detail"]
    senior = Membership.objects.get(trial=world.trial, role="senior")
    refused = client.post(f"{A}/allocations/", {"membership": senior.pk}, format="json")
    assert refused.status_code == 400 and "expected a reader" in refused.json()["detail"]


def test_an_invalid_csv_list_is_400_with_every_problem(world: World) -> None:
    client = as_(world, "other_coordinator")
    upload = SimpleUploadedFile("list.csv", b"position,arm\n1,scp\n3,maybe\n")
    response = client.post("/api/trials/trial-b/randomization/import/", {"file": upload},
                           format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert "refused" in body["detail"] and len(body["problems"]) >= 2


def test_the_case_flow_through_the_api(world: World) -> None:
    client = as_(world, "coordinator")
    case = client.post(f"{A}/cases/", {
        "case_id": "A-0050", "site": "A1", "age": 61, "sex": "M", "chief_complaint": "Cough",
        "history": "Smoker", "lab_results": "CRP 20",
    }, format="json").json()
    assert case["status"] == "screened" and "study_key" not in case
    url = f"{A}/cases/{case['id']}"
    assert client.post(f"{url}/enrol/").status_code == 409
    screened = client.post(f"{url}/screen/", {"answers": {"suspected_disease": True}},
                           format="json")
    assert screened.json()["eligibility_answers"] == {"suspected_disease": True}
    assert client.post(f"{url}/consent/").json()["consent_recorded_by"] == "coordinator-a"
    no_image = client.post(f"{url}/enrol/")
    assert no_image.status_code == 409 and "images" in no_image.json()["detail"]
    excluded = client.post(f"{url}/exclude/", {"reason": "Over-exposed"}, format="json")
    assert excluded.json()["status"] == "excluded"
    assert client.patch(url + "/", {"status": "enrolled"}, format="json").json()["status"] \
        == "excluded"  # status is read-only: it moves only through the actions
    assert client.delete(url + "/").status_code == 409


def test_a_screened_case_can_be_deleted_and_it_is_audited(world: World) -> None:
    case = CaseFactory(trial=world.trial, site=world.site, case_id="A-0077")
    assert as_(world, "coordinator").delete(f"{A}/cases/{case.pk}/").status_code == 204
    assert not Case.objects.filter(pk=case.pk).exists()
    assert AuditEvent.objects.filter(action="case.deleted", object_repr="A-0077").exists()


def test_an_ineligible_case_is_excluded_by_screening(world: World) -> None:
    client = as_(world, "coordinator")
    response = client.post(f"{A}/cases/{world.case.pk}/screen/",
                           {"answers": {"suspected_disease": False}}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "excluded"


def test_the_statistician_reads_cases_but_cannot_change_them(world: World) -> None:
    client = as_(world, "statistician")
    assert client.get(f"{A}/cases/").json()["count"] == 1
    assert client.patch(f"{A}/cases/{world.case.pk}/", {"age": 1}, format="json"
                        ).status_code == 403


def test_a_reader_sees_only_their_own_assignments_without_arms(world: World) -> None:
    reader = as_(world, "reader").get(f"{A}/assignments/").json()["results"]
    assert reader == [{"id": world.assignment.pk, "case": "A-0001", "position": 1}]
    reader2 = APIClient()
    reader2.force_authenticate(world.reader2.user)
    assert reader2.get(f"{A}/assignments/").json()["results"] == []
    everyone = as_(world, "coordinator").get(f"{A}/assignments/").json()["results"]
    assert everyone[0]["reader"] == "reader-a" and everyone[0]["arm"] == world.reader.arm


def test_an_allocated_reader_keeps_their_identity(world: World) -> None:
    client = as_(world, "coordinator")
    moved = client.patch(f"{A}/members/{world.reader.pk}/", {"role": "rater"}, format="json")
    assert moved.status_code == 400 and "allocated" in str(moved.json())
    ok = client.patch(f"{A}/members/{world.reader.pk}/", {"years_experience": 7}, format="json")
    assert ok.status_code == 200 and ok.json()["arm"] == world.reader.arm
    duplicate = client.post(f"{A}/members/", {"username": "reader-a", "role": "reader"},
                            format="json")
    assert duplicate.status_code == 400


def test_deleting_a_referenced_site_is_409_not_500(world: World) -> None:
    response = as_(world, "coordinator").delete(f"{A}/sites/{world.site.pk}/")
    assert response.status_code == 409 and "detail" in response.json()
    SiteFactory(trial=world.trial, code="A5")
    assert Trial.objects.get(pk=world.trial.pk).sites.count() == 2


def test_the_audit_log_is_read_only_and_filterable(world: World) -> None:
    client = as_(world, "coordinator")
    rows = client.get(f"{A}/audit/?action=reader.allocated").json()["results"]
    assert [r["action"] for r in rows] == ["reader.allocated"]
    assert client.post(f"{A}/audit/", {}, format="json").status_code == 405


def test_uploaded_dicom_is_imported_de_identified_and_listed(
    world: World, tmp_path, django_capture_on_commit_callbacks
) -> None:
    from tests.support.dicom_files import identified_cxr

    path, identifying = identified_cxr(tmp_path / "cxr.dcm", seed=3)
    client = as_(world, "coordinator")
    with path.open("rb") as handle, django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{A}/images/", {"site": "A1", "files": [handle]},
                               format="multipart")
    assert response.status_code == 202, response.content
    job = client.get(response["Location"]).json()
    assert job["status"] == "done" and job["imported"] == 1 and job["site"] == "A1"
    images = client.get(f"{A}/images/").json()
    assert images["count"] == 2
    body = (response.content + str(images).encode()).decode()
    assert not any(value in body for value in identifying.values())


def test_an_upload_needs_a_site_of_this_trial(world: World, tmp_path) -> None:
    upload = SimpleUploadedFile("x.dcm", b"not dicom")
    response = as_(world, "coordinator").post(f"{A}/images/", {"site": "B1", "files": [upload]},
                                              format="multipart")
    assert response.status_code == 400 and "site" in response.json()


PAGINATED = ["/api/trials/", f"{A}/sites/", f"{A}/members/", f"{A}/criteria/", f"{A}/cases/",
             f"{A}/images/", f"{A}/import-jobs/", f"{A}/assignments/", f"{A}/audit/",
             f"{A}/campaigns/", f"{A}/model-endpoints/", f"{A}/drafts/"]


@pytest.mark.parametrize("url", PAGINATED)
@pytest.mark.parametrize("query", ["limit=9223372036854775808", "offset=9223372036854775808",
                                   "limit=99999999999999999999999&offset=-5", "limit=abc"])
def test_huge_or_odd_page_bounds_never_fail(world: World, url: str, query: str) -> None:
    """Hole 19 of the security audit: a limit of 2**63 answered 500 on every list."""
    response = as_(world, "coordinator").get(f"{url}?{query}")
    assert response.status_code == 200, response.content[:200]
    body = response.json()
    assert len(body["results"]) <= 1000 and body["count"] >= 0


def test_raters_get_only_what_their_pages_show(world: World) -> None:
    """Hole 9 of the security audit: the trial name, registry id and site names reached
    blinded raters through the API while their pages hide them."""
    Trial.objects.filter(pk=world.trial.pk).update(registry_id="NCT06874647")
    rater = as_(world, "rater")
    listed = rater.get("/api/trials/").json()["results"]
    assert listed == [{"slug": "trial-a", "my_roles": ["rater"]}]
    body = rater.get(f"{A}/").content.decode()
    assert "Trial A" not in body and "NCT06874647" not in body
    for url in (f"{A}/sites/", f"{A}/criteria/"):
        assert rater.get(url).status_code == 403
    reader = as_(world, "reader").get(f"{A}/").json()  # other roles still see the name
    assert reader["name"] == "Trial A"


def test_the_member_look_up_reaches_only_the_coordinators_people(world: World) -> None:
    """A coordinator cannot find or add another trial's person by user name (as in the admin's
    drop-down); an account with no role anywhere yet can be added."""
    client = as_(world, "coordinator")
    other = client.post(f"{A}/members/", {"username": "coordinator-b", "role": "rater"},
                        format="json")
    assert other.status_code == 400 and "does not exist" in str(other.json())
    fresh = UserFactory(username="fresh-account")
    added = client.post(f"{A}/members/", {"username": fresh.username, "role": "rater"},
                        format="json")
    assert added.status_code == 201, added.content
