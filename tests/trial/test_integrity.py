"""Trial integrity holes of the security audit, each reproduced and shown refused.

Hole 1: a coordinator locked the trial, read the randomisation list (seed and every free
slot's arm) in the admin, and set it back to reading. Hole 14: a locked trial still took
writes. Hole 15: the design changed after randomisation. Hole 16: the last coordinator could
remove themselves; a rater with ratings could become a reader. The status is now a one-way
state machine (``trial.lifecycle``), a locked trial's records never change, the design is
frozen once the trial leaves set-up, and memberships change only consistently (``trial.people``).
"""

from __future__ import annotations

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from tests.support.factories import PASSWORD
from tests.support.trial_world import SEED, World
from trial import lifecycle
from trial.errors import ServiceError
from trial.models import (
    AuditEvent,
    Case,
    EligibilityCriterion,
    Membership,
    Role,
    Signature,
    Site,
    Trial,
)

pytestmark = pytest.mark.django_db
ORDER = lifecycle.ORDER
A = "/api/trials/trial-a"


def api(world: World, role: str = "coordinator") -> APIClient:
    client = APIClient()
    client.force_authenticate(world.users[role])
    return client


def stored_status(world: World) -> str:
    return Trial.objects.get(pk=world.trial.pk).status


@pytest.mark.parametrize(("current", "wanted"), list(itertools.permutations(ORDER, 2)))
def test_the_status_only_moves_forward_and_locked_is_final(world: World, current: str,
                                                            wanted: str) -> None:
    Trial.objects.filter(pk=world.trial.pk).update(status=current)
    forward = ORDER.index(wanted) > ORDER.index(current)
    coordinator = world.users["coordinator"]
    if forward:
        assert lifecycle.set_status(world.trial, wanted, by=coordinator,
                                    password=PASSWORD).status == wanted
        event = AuditEvent.objects.get(action="trial.status_changed", trial=world.trial)
        assert (event.before, event.after, event.actor) == (
            {"status": current}, {"status": wanted}, coordinator)
    else:
        with pytest.raises(ServiceError) as refused:
            lifecycle.set_status(world.trial, wanted, by=coordinator)
        assert refused.value.status == 409
        assert stored_status(world) == current
        assert not AuditEvent.objects.filter(action="trial.status_changed").exists()


def test_the_unmasking_attack_is_refused_and_the_reveal_is_audited(world: World) -> None:
    client = api(world)
    locked = client.patch(f"{A}/", {"status": "locked", "password": PASSWORD}, format="json")
    assert locked.status_code == 200 and locked.json()["status"] == "locked"
    assert AuditEvent.objects.filter(action="trial.locked", trial=world.trial).exists()
    # After the final lock the list reveals its seed, and the view is recorded.
    page = world.client("coordinator").get(
        reverse("admin:trial_randomizationlist_change", args=[world.rlist.pk]))
    assert page.status_code == 200 and str(SEED) in page.content.decode()
    reveal = AuditEvent.objects.get(action="randomization.revealed")
    assert reveal.actor == world.users["coordinator"] and reveal.trial == world.trial
    # ... and the trial cannot go back to reading, by the API, the admin or a command.
    back = client.patch(f"{A}/", {"status": "reading"}, format="json")
    assert back.status_code == 409 and "locked" in back.json()["detail"]
    admin_form = world.client("coordinator").post(
        reverse("admin:trial_trial_change", args=[world.trial.pk]), {"status": "reading"})
    assert admin_form.status_code == 403  # a locked trial's page is read-only
    with pytest.raises(CommandError, match="locked is final"):
        call_command("trial_status", trial="trial-a", to="reading", by="coordinator-a")
    assert stored_status(world) == Trial.Status.LOCKED


def test_before_the_lock_the_admin_never_shows_the_seed(world: World) -> None:
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.RATING)
    page = world.client("coordinator").get(
        reverse("admin:trial_randomizationlist_change", args=[world.rlist.pk]))
    assert page.status_code == 200 and str(SEED) not in page.content.decode()
    assert not AuditEvent.objects.filter(action="randomization.revealed").exists()


def test_the_admin_form_offers_only_forward_statuses(world: World) -> None:
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.READING)
    url = reverse("admin:trial_trial_change", args=[world.trial.pk])
    html = world.client("coordinator").get(url).content.decode()
    assert 'value="rating"' in html and 'value="locked"' in html
    assert 'value="setup"' not in html and 'value="enrolling"' not in html


def test_the_command_moves_the_status_forward(world: World) -> None:
    call_command("trial_status", trial="trial-a", to="enrolling", by="coordinator-a")
    assert stored_status(world) == Trial.Status.ENROLLING


@pytest.fixture
def locked(world: World) -> World:
    lifecycle.set_status(world.trial, Trial.Status.LOCKED, by=world.users["coordinator"],
                         password=PASSWORD)
    return world


WRITES = {
    "case clinical text": ("patch", "/cases/{case}/", {"chief_complaint": "Changed"}),
    "new case": ("post", "/cases/", {"case_id": "A-0099", "site": "A1"}),
    "new site": ("post", "/sites/", {"code": "A9", "name": "Late site"}),
    "site edit": ("patch", "/sites/{site}/", {"name": "Renamed"}),
    "criterion delete": ("delete", "/criteria/{criterion}/", None),
    "member edit": ("patch", "/members/{reader2}/", {"years_experience": 9}),
    "trial edit": ("patch", "/", {"name": "Renamed trial"}),
    "new campaign": ("post", "/campaigns/", {"name": "Late", "instruments": ["likert"]}),
    "model endpoint edit": ("patch", "/model-endpoints/{endpoint}/", {"timeout_s": 5}),
    "assign": ("post", "/assign/", {}),
    "allocate": ("post", "/allocations/allocate-all/", {}),
    "reader opens a case": ("post", "/worklist/1/open/", {}),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_locked_trial_takes_no_write(locked: World, name: str) -> None:
    method, path, data = WRITES[name]
    ids = {"case": locked.case.pk, "site": locked.site.pk, "criterion": locked.criterion.pk,
           "reader2": locked.reader2.pk, "endpoint": locked.endpoint.pk}
    role = "reader" if "reader" in name else "coordinator"
    before = (Case.objects.count(), Site.objects.count(), EligibilityCriterion.objects.count(),
              list(Case.objects.values_list("chief_complaint", flat=True)))
    response = getattr(api(locked, role), method)(A + path.format(**ids), data, format="json")
    assert response.status_code == 409, (name, response.status_code, response.content[:300])
    assert "locked" in response.json()["detail"]
    assert before == (Case.objects.count(), Site.objects.count(),
                      EligibilityCriterion.objects.count(),
                      list(Case.objects.values_list("chief_complaint", flat=True)))


def test_a_locked_trial_is_read_only_in_the_admin(locked: World) -> None:
    client = locked.client("coordinator")
    url = reverse("admin:trial_case_change", args=[locked.case.pk])
    assert client.get(url).status_code == 200  # shown
    assert client.post(url, {"chief_complaint": "Changed"}).status_code == 403
    assert Case.objects.get(pk=locked.case.pk).chief_complaint != "Changed"


@pytest.mark.parametrize(("field", "value"), [
    ("ratio_ai_assisted", 2), ("block_sizes", [3]), ("ai_assisted_label", "SCP"),
    ("scp_label", "AI-assisted"), ("stratify_by_site", True),
])
def test_the_design_is_frozen_once_randomised(world: World, field: str, value) -> None:
    before = getattr(Trial.objects.get(pk=world.trial.pk), field)
    response = api(world).patch(f"{A}/", {field: value}, format="json")
    assert response.status_code == 409 and field in response.json()["detail"]
    assert getattr(Trial.objects.get(pk=world.trial.pk), field) == before


def test_the_design_still_changes_in_set_up(world: World) -> None:
    response = api(world).patch("/api/trials/trial-b/", {"ratio_ai_assisted": 2,
                                                         "block_sizes": [3]}, format="json")
    other = api(world, "coordinator")
    other.force_authenticate(world.users["other_coordinator"])
    response = other.patch("/api/trials/trial-b/", {"ratio_ai_assisted": 2, "block_sizes": [3]},
                           format="json")
    assert response.status_code == 200
    assert Trial.objects.get(slug="trial-b").ratio_ai_assisted == 2


def test_criteria_are_frozen_once_the_trial_leaves_set_up(world: World) -> None:
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.ENROLLING)
    url = f"{A}/criteria/{world.criterion.pk}/"
    response = api(world).delete(url)
    assert response.status_code == 409 and "screened" in response.json()["detail"]
    assert EligibilityCriterion.objects.filter(pk=world.criterion.pk).exists()
    added = api(world).post(f"{A}/criteria/", {"kind": "inclusion", "code": "late",
                                               "text": "Late"}, format="json")
    assert added.status_code == 409


def test_the_last_coordinator_cannot_remove_themselves(world: World) -> None:
    mine = Membership.objects.get(trial=world.trial, role=Role.COORDINATOR)
    response = api(world).delete(f"{A}/members/{mine.pk}/")
    assert response.status_code == 409 and "last coordinator" in response.json()["detail"]
    assert Membership.objects.filter(pk=mine.pk).exists()


def test_a_role_never_changes_a_new_role_is_a_new_membership(world: World) -> None:
    rater = Membership.objects.get(trial=world.trial, role=Role.RATER)
    response = api(world).patch(f"{A}/members/{rater.pk}/", {"role": "reader"}, format="json")
    assert response.status_code == 409 and "new membership" in response.json()["detail"]
    assert Membership.objects.get(pk=rater.pk).role == Role.RATER
    added = api(world).post(f"{A}/members/", {"username": rater.user.username, "role": "reader",
                                              "site": "A1"}, format="json")
    assert added.status_code == 201


def test_a_membership_with_records_is_never_removed(world: World) -> None:
    response = api(world).delete(f"{A}/members/{world.reader.pk}/")  # allocated and assigned
    assert response.status_code == 409 and "records" in response.json()["detail"]
    assert Membership.objects.filter(pk=world.reader.pk).exists()
    spare = Membership.objects.create(trial=world.trial, user=world.users["rater"],
                                      role=Role.STATISTICIAN)
    assert api(world).delete(f"{A}/members/{spare.pk}/").status_code == 204


def test_every_view_of_the_analysis_is_audited(world: World) -> None:
    client = world.client("statistician")
    for name in ("report-pdf", "export-xlsx", "export-csv"):
        assert client.get(reverse(f"analysis:{name}", args=["trial-a"])).status_code == 200
    seen = AuditEvent.objects.filter(action="analysis.viewed", trial=world.trial)
    assert sorted(e.after["what"] for e in seen) == ["data (CSV zip)", "data (XLSX)",
                                                    "report (PDF)"]
    assert {e.actor for e in seen} == {world.users["statistician"]}


def test_a_locked_trial_imports_no_image(locked: World, tmp_path) -> None:
    from tests.support.dicom_files import identified_cxr
    from trial.dicom.importer import import_path

    path = identified_cxr(tmp_path / "late.dcm")
    with pytest.raises(lifecycle.TrialLocked):
        import_path(path, trial=locked.trial, site=locked.site)
    assert Case.objects.filter(trial=locked.trial).count() == 1


def test_locking_is_signed_with_the_password_entered_now(world: World) -> None:
    """Electronic signature (21 CFR 11.200): the lock needs the coordinator's password; the
    signature records the printed name, the time and the meaning."""
    coordinator = world.users["coordinator"]
    coordinator.first_name, coordinator.last_name = "Ada", "Coordinator"
    coordinator.save()
    client = api(world)
    refused = client.patch(f"{A}/", {"status": "locked", "password": "wrong"}, format="json")
    assert refused.status_code == 400 and "password" in refused.json()["detail"]
    assert stored_status(world) != Trial.Status.LOCKED
    assert AuditEvent.objects.filter(action="signature.refused", actor=coordinator).exists()
    missing = client.patch(f"{A}/", {"status": "locked"}, format="json")
    assert missing.status_code == 400
    done = client.patch(f"{A}/", {"status": "locked", "password": PASSWORD}, format="json")
    assert done.status_code == 200 and "password" not in done.json()
    (signature,) = Signature.objects.filter(trial=world.trial)
    assert (signature.signer, signature.printed_name, signature.meaning) == (
        coordinator, "Ada Coordinator", Signature.Meaning.TRIAL_LOCKED)
    assert str(signature).startswith("Ada Coordinator, ")
    assert "Trial locked" in str(signature)
    assert PASSWORD not in str(list(AuditEvent.objects.values_list("after", flat=True)))


def test_the_admin_lock_needs_the_password(world: World) -> None:
    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.RATING)
    url = reverse("admin:trial_trial_change", args=[world.trial.pk])
    client = world.client("coordinator")
    form = {"name": "Trial A", "registry_id": "", "status": "locked",
            "ai_assisted_label": world.trial.ai_assisted_label,
            "scp_label": world.trial.scp_label, "report_template": "",
            "allowed_modalities": '["CR", "DX"]',
            "sites-TOTAL_FORMS": 0, "sites-INITIAL_FORMS": 0,
            "criteria-TOTAL_FORMS": 0, "criteria-INITIAL_FORMS": 0}
    page = client.post(url, {**form, "signature_password": "wrong"})
    assert page.status_code == 200 and "nothing was signed" in page.content.decode()
    assert stored_status(world) == Trial.Status.RATING
    done = client.post(url, {**form, "signature_password": PASSWORD})
    assert done.status_code == 302, done.content.decode()[:2000]
    assert stored_status(world) == Trial.Status.LOCKED
    assert Signature.objects.filter(trial=world.trial, meaning="trial_locked").count() == 1


def test_the_command_signs_the_lock_with_the_password_on_stdin(world: World, monkeypatch) -> None:
    import io

    Trial.objects.filter(pk=world.trial.pk).update(status=Trial.Status.RATING)
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    with pytest.raises(CommandError, match="nothing was signed"):
        call_command("trial_status", trial="trial-a", to="locked", by="coordinator-a",
                     password_stdin=True)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    call_command("trial_status", trial="trial-a", to="locked", by="coordinator-a",
                 password_stdin=True)
    assert stored_status(world) == Trial.Status.LOCKED
