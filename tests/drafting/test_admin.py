"""The coordinator's admin for model endpoints and AI drafts.

GET access to the list and object pages is in ``test_admin_access`` (rows added there); here:
who may write, that nobody writes a draft by hand, the retry and queue actions, the trial
page's progress line, the demo label, the audit of endpoint edits, and that an API key's
value never reaches a page.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils.html import escape

from drafting import queue
from drafting.admin import draft_list_url
from drafting.models import Draft, ModelEndpoint
from tests.support.draft_world import imported_case
from tests.support.trial_world import DRAFT_TEXT, ROLES, World, build_world
from trial.models import AuditEvent, Case

ANON, DENIED = 302, 403
WRITERS = {"coordinator", "superuser"}
NOBODY = {**{role: DENIED for role in ROLES}, "anonymous": ANON}
SECRET = "sk-live-Zq8vN3rT6yW1xK4m"  # an API key's value: must never appear anywhere


@pytest.fixture
def world(db) -> World:
    return build_world(staff_roles=True)  # a 403 proves the role check, not ``is_staff``


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def endpoint_form(endpoint: ModelEndpoint, **changes) -> dict:
    """The endpoint's change form as posted, with ``changes`` applied."""
    names = ("name", "active", "backend", "base_url", "model_name", "api_key_env", "timeout_s",
             "prompt_template", "max_tokens", "temperature", "image_size", "pad_value",
             "max_attempts", "retry_backoff_s", "concurrency")
    data = {name: getattr(endpoint, name) for name in names}
    data.update(changes)
    if not data.pop("active"):
        return data
    return {**data, "active": "on"}


def failed_draft(world: World, folder, seed: int) -> Draft:
    """A failed draft of the active endpoint for a new enrolled case with a real image."""
    case = imported_case(world.trial, world.site, folder, seed=seed)
    draft = queue.ensure_draft(case, world.endpoint)
    Draft.objects.filter(pk=draft.pk).update(status=Draft.Status.FAILED, attempts=5,
                                             error="HTTP 503 from the model server")
    return draft


def run_action(world: World, action: str, drafts: list[Draft], role: str = "coordinator"):
    return world.client(role).post(reverse("admin:drafting_draft_changelist"), {
        "action": action, "_selected_action": [d.pk for d in drafts],
    }, follow=True)


# --- who may write -------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_endpoint_change_post_access(world: World, role: str) -> None:
    url = reverse("admin:drafting_modelendpoint_change", args=[world.endpoint.pk])
    response = world.client(role).post(url, endpoint_form(world.endpoint, timeout_s=9))
    expected = 302 if role in WRITERS else NOBODY[role]
    assert response.status_code == expected, role
    world.endpoint.refresh_from_db()
    assert (world.endpoint.timeout_s == 9) is (role in WRITERS)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", ["add", "delete", "history"])
def test_nobody_adds_or_deletes_a_draft(world: World, page: str, role: str) -> None:
    args = [] if page == "add" else [world.draft.pk]
    response = world.client(role).get(reverse(f"admin:drafting_draft_{page}", args=args))
    expected = 200 if page == "history" and role in WRITERS else NOBODY[role]
    assert response.status_code == expected, (page, role)


@pytest.mark.parametrize("role", ROLES)
def test_nobody_edits_a_draft(world: World, role: str) -> None:
    url = reverse("admin:drafting_draft_change", args=[world.draft.pk])
    response = world.client(role).post(url, {"findings": "Edited by hand", "status": "done"})
    assert response.status_code == NOBODY[role], role
    assert Draft.objects.get(pk=world.draft.pk).findings == DRAFT_TEXT


@pytest.mark.parametrize("role", ROLES)
def test_an_endpoint_that_made_drafts_cannot_be_deleted(world: World, role: str) -> None:
    url = reverse("admin:drafting_modelendpoint_delete", args=[world.endpoint.pk])
    assert world.client(role).post(url, {"post": "yes"}).status_code == NOBODY[role], role
    assert ModelEndpoint.objects.filter(pk=world.endpoint.pk).exists()


def test_an_unused_endpoint_is_deleted_and_the_deletion_audited(world: World) -> None:
    spare = ModelEndpoint.objects.create(trial=world.trial, name="Spare", active=False,
                                         backend=ModelEndpoint.Backend.DEMO)
    url = reverse("admin:drafting_modelendpoint_delete", args=[spare.pk])
    assert world.client("coordinator").post(url, {"post": "yes"}).status_code == 302
    assert not ModelEndpoint.objects.filter(pk=spare.pk).exists()
    assert AuditEvent.objects.filter(action="modelendpoint.deleted", object_id=str(spare.pk),
                                     actor=world.users["coordinator"]).exists()


@pytest.mark.parametrize("role", ROLES)
def test_retry_action_access(world: World, role: str) -> None:
    Draft.objects.filter(pk=world.draft.pk).update(status=Draft.Status.FAILED)
    run_action(world, "retry_failed_action", [world.draft], role)
    retried = AuditEvent.objects.filter(action="draft.retried").exists()
    assert retried is (role in WRITERS), role


# --- actions -------------------------------------------------------------------------------

def test_retry_action_requeues_failed_drafts_and_says_how_many(world: World, tmp_path) -> None:
    failed = [failed_draft(world, tmp_path, seed) for seed in (1, 2)]
    response = run_action(world, "retry_failed_action", [*failed, world.draft])
    assert ("success", "2 failed draft(s) re-queued.") in messages_of(response)
    assert any(level == "warning" and text.startswith("1 selected draft(s) left alone")
               for level, text in messages_of(response))
    for draft in failed:  # no broker in tests: the retry has already run (demo backend)
        draft.refresh_from_db()
        assert (draft.status, draft.attempts, draft.error) == (Draft.Status.DONE, 1, "")
    assert AuditEvent.objects.filter(action="draft.retried",
                                     actor=world.users["coordinator"]).count() == 2


def test_retry_action_leaves_a_failed_draft_of_an_earlier_configuration_alone(
    world: World, tmp_path
) -> None:
    old = failed_draft(world, tmp_path, 1)
    ModelEndpoint.objects.filter(pk=world.endpoint.pk).update(prompt_template="Describe {age}.")
    response = run_action(world, "retry_failed_action", [old])
    assert not any(level == "success" for level, _ in messages_of(response))
    assert Draft.objects.get(pk=old.pk).status == Draft.Status.FAILED


def test_queue_missing_action_queues_only_enrolled_cases_without_a_draft(
    world: World, tmp_path
) -> None:
    missing = [imported_case(world.trial, world.site, tmp_path, seed=s) for s in (1, 2)]
    screened = imported_case(world.trial, world.site, tmp_path, seed=3, enrolled=False)
    response = run_action(world, "queue_missing_action", [world.draft])
    assert ("success", "Trial A: 2 missing draft(s) queued.") in messages_of(response)
    for case in missing:  # made at once by the demo backend (no broker in tests)
        draft = Draft.objects.get(case=case, fingerprint=world.endpoint.fingerprint)
        assert draft.status == Draft.Status.DONE and draft.is_demo
    assert not Draft.objects.filter(case=screened).exists()
    event = AuditEvent.objects.get(action="draft.queued_missing")
    assert event.actor == world.users["coordinator"] and event.after["count"] == 2
    again = run_action(world, "queue_missing_action", [world.draft])
    assert ("info", "Trial A: every enrolled case already has a draft.") in messages_of(again)


def test_queue_drafts_tool_on_the_trial_page(world: World, tmp_path) -> None:
    case = imported_case(world.trial, world.site, tmp_path, seed=1)
    url = reverse("admin:trial_trial_queue_drafts", args=[world.trial.pk])
    response = world.client("coordinator").post(url, follow=True)
    assert ("success", "Trial A: 1 missing draft(s) queued.") in messages_of(response)
    assert Draft.objects.filter(case=case, status=Draft.Status.DONE).exists()


def test_queue_missing_without_an_active_endpoint_is_an_error_message(world: World) -> None:
    ModelEndpoint.objects.filter(pk=world.endpoint.pk).update(active=False)
    url = reverse("admin:trial_trial_queue_drafts", args=[world.trial.pk])
    response = world.client("coordinator").post(url, follow=True)
    assert ("error", "Trial A: no active model endpoint, so no draft can be made.") in (
        messages_of(response))


# --- what the pages show -------------------------------------------------------------------

def test_trial_page_shows_drafts_progress_linking_to_the_filtered_list(
    world: World, tmp_path
) -> None:
    Case.objects.filter(pk=world.case.pk).update(status=Case.Status.ENROLLED)  # its draft: done
    failed = failed_draft(world, tmp_path, 1)
    queue.ensure_draft(imported_case(world.trial, world.site, tmp_path, seed=2),
                          world.endpoint)  # queued
    imported_case(world.trial, world.site, tmp_path, seed=3)  # no draft yet
    client = world.client("coordinator")
    html = client.get(reverse("admin:trial_trial_change", args=[world.trial.pk])).content.decode()
    assert "1 done</a> · " in html and "1 failed</a> · " in html
    assert "1 queued or running</a> of 4 enrolled case(s); 1 without a draft." in html
    failed_url = draft_list_url(world.trial, status__exact="failed")
    assert escape(failed_url) in html
    listed = client.get(failed_url).content.decode()
    assert failed.case.case_id in listed and world.case.case_id not in listed


def test_demo_drafts_are_labelled_in_the_list_and_on_their_page(world: World) -> None:
    client = world.client("coordinator")
    listing = client.get(reverse("admin:drafting_draft_changelist")).content.decode()
    page = client.get(reverse("admin:drafting_draft_change",
                              args=[world.draft.pk])).content.decode()
    assert "DEMO backend" in listing and "DEMO backend" in page
    Draft.objects.filter(pk=world.draft.pk).update(backend=ModelEndpoint.Backend.OPENAI)
    listing = client.get(reverse("admin:drafting_draft_changelist")).content.decode()
    assert "DEMO backend" not in listing


def test_a_drafts_error_is_truncated_in_the_list_and_whole_on_its_page(world: World) -> None:
    error = "HTTP 400 from the model server: " + "x" * 200 + " END-OF-ERROR"
    Draft.objects.filter(pk=world.draft.pk).update(status=Draft.Status.FAILED, error=error)
    client = world.client("coordinator")
    listing = client.get(reverse("admin:drafting_draft_changelist")).content.decode()
    page = client.get(reverse("admin:drafting_draft_change",
                              args=[world.draft.pk])).content.decode()
    assert "HTTP 400 from the model server" in listing and "END-OF-ERROR" not in listing
    assert "END-OF-ERROR" in page


def test_draft_list_filters_by_status_and_backend(world: World, tmp_path) -> None:
    failed = failed_draft(world, tmp_path, 1)
    client = world.client("coordinator")
    changelist = reverse("admin:drafting_draft_changelist")
    by_status = client.get(changelist, {"status__exact": "failed"}).content.decode()
    assert failed.case.case_id in by_status and world.case.case_id not in by_status
    by_backend = client.get(changelist, {"backend__exact": "openai"}).content.decode()
    assert failed.case.case_id not in by_backend and world.case.case_id not in by_backend


def test_endpoint_edit_is_audited_and_changes_the_fingerprint(world: World) -> None:
    before = world.endpoint.fingerprint
    url = reverse("admin:drafting_modelendpoint_change", args=[world.endpoint.pk])
    client = world.client("coordinator")
    response = client.post(url, endpoint_form(world.endpoint, prompt_template="Report {age}."))
    assert response.status_code == 302
    endpoint = ModelEndpoint.objects.get(pk=world.endpoint.pk)
    assert endpoint.fingerprint != before
    event = AuditEvent.objects.get(action="modelendpoint.changed")
    assert event.actor == world.users["coordinator"] and event.trial == world.trial
    assert event.after["prompt_template"] == "Report {age}."
    assert event.before["prompt_template"] == world.endpoint.prompt_template
    html = client.get(url).content.decode()
    assert endpoint.fingerprint in html and "changes the fingerprint" in html


def test_a_second_active_endpoint_is_refused_with_an_explanation(world: World) -> None:
    data = {**endpoint_form(world.endpoint, name="Second"), "trial": world.trial.pk}
    response = world.client("coordinator").post(reverse("admin:drafting_modelendpoint_add"), data)
    assert response.status_code == 200
    assert "The trial&#x27;s active endpoint is “World demo endpoint”" in (
        response.content.decode())
    assert ModelEndpoint.objects.filter(trial=world.trial).count() == 1


def test_the_key_is_never_shown_only_whether_its_variable_is_set(world: World,
                                                                 monkeypatch) -> None:
    monkeypatch.setenv("CXR_MODEL_KEY", SECRET)
    client = world.client("coordinator")
    add = client.post(reverse("admin:drafting_modelendpoint_add"), {
        **endpoint_form(world.endpoint, name="Hosted", backend="openai", active=False,
                        base_url="https://models.example.org/v1", model_name="cxr-7b",
                        api_key_env="CXR_MODEL_KEY"),
        "trial": world.trial.pk,
    })
    assert add.status_code == 302
    endpoint = ModelEndpoint.objects.get(name="Hosted")
    edit = reverse("admin:drafting_modelendpoint_change", args=[endpoint.pk])
    client.post(edit, endpoint_form(endpoint, timeout_s=30))
    event = AuditEvent.objects.filter(object_id=str(endpoint.pk)).latest("at")
    pages = [
        reverse("admin:drafting_modelendpoint_changelist"), edit,
        reverse("admin:drafting_modelendpoint_add"), reverse("admin:drafting_draft_changelist"),
        reverse("admin:drafting_draft_change", args=[world.draft.pk]),
        reverse("admin:trial_trial_change", args=[world.trial.pk]),
        reverse("admin:trial_auditevent_changelist"),
        reverse("admin:trial_auditevent_change", args=[event.pk]),
    ]
    for url in pages:
        assert SECRET not in client.get(url).content.decode(), url
    assert "<code>CXR_MODEL_KEY</code> is <strong>set</strong>" in client.get(edit).content.decode()
    monkeypatch.delenv("CXR_MODEL_KEY")
    assert "is <strong>not set</strong>" in client.get(edit).content.decode()


# --- prompt templates: only the documented placeholders (security issue 18) ----------------

@pytest.mark.parametrize(("template", "quoted"), [
    ("Report {age.foo}.", "{age.foo}"),
    ("Report {age[a]}.", "{age[a]}"),
    ("Report {age:>50000000}.", "{age:&gt;50000000}"),
    ("Report {weight}.", "{weight}"),
    ("Report {age.", "Malformed placeholder"),
], ids=["attribute", "index", "width", "unknown", "unbalanced"])
def test_the_endpoint_form_refuses_a_template_with_anything_but_a_documented_placeholder(
    world: World, template: str, quoted: str
) -> None:
    client = world.client("coordinator")
    change = reverse("admin:drafting_modelendpoint_change", args=[world.endpoint.pk])
    edited = client.post(change, endpoint_form(world.endpoint, prompt_template=template))
    added = client.post(reverse("admin:drafting_modelendpoint_add"), {
        **endpoint_form(world.endpoint, name="Hosted", active=False, prompt_template=template),
        "trial": world.trial.pk,
    })
    for response in (edited, added):
        assert response.status_code == 200  # the form again, with the reason; never a 500
        html = response.content.decode()
        assert "errorlist" in html and quoted in html, html[:2000]
    world.endpoint.refresh_from_db()
    assert world.endpoint.prompt_template != template
    assert ModelEndpoint.objects.filter(trial=world.trial).count() == 1


# --- a done draft with a warning (security issue 12) ----------------------------------------

def test_a_drafts_warning_is_shown_in_the_list_on_its_page_and_filters(world: World) -> None:
    warning = ("The model's reply has no FINDINGS or IMPRESSION header: all of it was put in "
               "FINDINGS, and IMPRESSION is empty. WARNING-END")
    client = world.client("coordinator")
    changelist = reverse("admin:drafting_draft_changelist")
    assert "draft-warning" not in client.get(changelist).content.decode()
    Draft.objects.filter(pk=world.draft.pk).update(warning=warning)
    listing = client.get(changelist).content.decode()
    page = client.get(reverse("admin:drafting_draft_change",
                              args=[world.draft.pk])).content.decode()
    assert "draft-warning" in listing and "no FINDINGS or IMPRESSION header" in listing
    assert "WARNING-END" not in listing  # truncated in the list, whole on the page
    assert "draft-warning" in page and "WARNING-END" in page
    with_warning = client.get(changelist, {"warning": "yes"}).content.decode()
    without = client.get(changelist, {"warning": "no"}).content.decode()
    assert world.case.case_id in with_warning and world.case.case_id not in without


# --- checking the model from the admin ---------------------------------------------------

def check_url(endpoint: ModelEndpoint) -> str:
    return reverse("admin:drafting_modelendpoint_check_model", args=[endpoint.pk])


@pytest.mark.parametrize("role", ROLES)
def test_check_the_model_access(world: World, role: str) -> None:
    response = world.client(role).post(check_url(world.endpoint))
    expected = 302 if role in WRITERS else NOBODY[role]
    assert response.status_code == expected, role
    assert world.endpoint.checks.exists() is (role in WRITERS), role


def test_check_the_model_is_a_post_button_on_the_endpoint_page(world: World) -> None:
    page = world.client("coordinator").get(
        reverse("admin:drafting_modelendpoint_change", args=[world.endpoint.pk]))
    html = page.content.decode()
    assert f'<form method="post" action="{check_url(world.endpoint)}"' in html
    assert "Not checked yet" in html
    assert world.client("coordinator").get(check_url(world.endpoint)).status_code == 405


def test_check_the_model_asks_the_real_server_and_shows_its_answer(world: World,
                                                                     fake_model) -> None:
    ModelEndpoint.objects.filter(pk=world.endpoint.pk).update(
        backend="openai", base_url=fake_model.url, model_name="cxr-model")
    client = world.client("coordinator")
    response = client.post(check_url(world.endpoint), follow=True)
    [(level, text)] = messages_of(response)
    assert level == "success" and text.startswith("World demo endpoint: OK.")
    [request] = fake_model.requests
    assert request.body["model"] == "cxr-model"
    check = world.endpoint.checks.get()
    assert (check.status, check.requested_by) == ("ok", world.users["coordinator"])
    assert "Parsed IMPRESSION:\n  Normal chest." in check.output
    assert check.latency_ms is not None and check.finished_at is not None
    html = response.content.decode()
    assert 'data-status="ok"' in html and escape("Parsed IMPRESSION:") in html
    assert not Draft.objects.exclude(pk=world.draft.pk).exists()  # a check is not a draft
    listing = client.get(reverse("admin:drafting_modelendpoint_changelist")).content.decode()
    assert ">OK</span>" in listing


def test_a_failed_check_says_why_on_the_page(world: World, fake_model) -> None:
    from tests.support.fake_openai import Reply

    ModelEndpoint.objects.filter(pk=world.endpoint.pk).update(
        backend="openai", base_url=fake_model.url, model_name="cxr-model")
    fake_model.default = Reply(status=401, body=b'{"error": "bad key"}')
    response = world.client("coordinator").post(check_url(world.endpoint), follow=True)
    [(level, text)] = messages_of(response)
    assert level == "error"
    assert "did not give a report: HTTP 401" in text
    check = world.endpoint.checks.get()
    assert check.status == "failed"
    assert "not retryable: a draft would fail at once" in check.output
    assert 'data-status="failed"' in response.content.decode()


def test_a_check_of_an_earlier_configuration_is_marked_as_such(world: World) -> None:
    client = world.client("coordinator")
    client.post(check_url(world.endpoint))
    url = reverse("admin:drafting_modelendpoint_change", args=[world.endpoint.pk])
    assert "(an earlier configuration)" not in client.get(url).content.decode()
    client.post(url, endpoint_form(world.endpoint, max_tokens=300))
    assert "(an earlier configuration)" in client.get(url).content.decode()


def test_check_the_model_with_the_broker_down_fails_the_check_at_once(world: World) -> None:
    from tests.support.celery_helpers import celery_on_redis
    from tests.support.servers import free_port

    with celery_on_redis(f"redis://127.0.0.1:{free_port()}/0"):
        response = world.client("coordinator").post(check_url(world.endpoint), follow=True)
    [(level, text)] = messages_of(response)
    assert level == "error" and "did not take the check" in text
    assert world.endpoint.checks.get().status == "failed"
