"""``/api/trials/{slug}/model-endpoints/`` and ``/api/trials/{slug}/drafts/``.

GET access is in ``test_api_access`` (rows added there); here: who may write, the trial
integrity rule (readers of either arm, seniors and raters never receive a draft), the status
filter, retry, validation, audit, and that an API key's value never leaves the server.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from drafting import queue
from drafting.models import Draft, ModelEndpoint
from tests.support.draft_world import imported_case
from tests.support.trial_world import DRAFT_TEXT, ROLES, World
from tests.trial.test_api_access import COORD, GETS, api, expect, fill
from trial.models import AuditEvent

A = "/api/trials/trial-a"
SECRET = "sk-live-Zq8vN3rT6yW1xK4m"  # an API key's value: must never appear anywhere
NOT_FOR_THEM = ("reader", "senior", "rater")


def as_(world: World, role: str) -> APIClient:
    return api(world, role)


def spare_endpoint(world: World) -> ModelEndpoint:
    return ModelEndpoint.objects.create(trial=world.trial, name="Spare", active=False,
                                        backend=ModelEndpoint.Backend.DEMO)


def fail(draft: Draft) -> None:
    Draft.objects.filter(pk=draft.pk).update(status=Draft.Status.FAILED,
                                             error="HTTP 503 from the model server")


# (method, url, body, set-up, expected)
WRITES = {
    "add endpoint": ("post", f"{A}/model-endpoints/",
                     {"name": "Hosted", "backend": "demo", "active": False}, None,
                     expect(COORD, 201)),
    "edit endpoint": ("patch", f"{A}/model-endpoints/{{endpoint}}/", {"timeout_s": 9}, None,
                      expect(COORD)),
    "delete unused endpoint": ("delete", f"{A}/model-endpoints/{{spare}}/", None,
                               spare_endpoint, expect(COORD, 204)),
    "delete used endpoint": ("delete", f"{A}/model-endpoints/{{endpoint}}/", None, None,
                             expect(COORD, 409)),
    "retry failed draft": ("post", f"{A}/drafts/{{draft}}/retry/", {},
                           lambda w: fail(w.draft), expect(COORD, 202)),
    "retry done draft": ("post", f"{A}/drafts/{{draft}}/retry/", {}, None, expect(COORD, 409)),
    "post a draft": ("post", f"{A}/drafts/", {"findings": "x"}, None, expect(COORD, 405)),
    "edit a draft": ("patch", f"{A}/drafts/{{draft}}/", {"findings": "x"}, None,
                     expect(COORD, 405)),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("write", WRITES)
def test_draft_api_write_access(world: World, write: str, role: str) -> None:
    method, url, body, setup, expected = WRITES[write]
    extra = setup(world) if setup else None
    url = fill(url.replace("{spare}", str(getattr(extra, "pk", ""))), world)
    response = getattr(as_(world, role), method)(url, body, format="json")
    assert response.status_code == expected[role], (write, role, response.content[:300])
    if response.status_code >= 400:
        assert "detail" in response.json()


DRAFT_URLS = [
    ("get", f"{A}/drafts/"), ("get", f"{A}/drafts/{{draft}}/"),
    ("get", f"{A}/drafts/?status=done"), ("post", f"{A}/drafts/{{draft}}/retry/"),
    ("get", f"{A}/model-endpoints/"), ("get", f"{A}/model-endpoints/{{endpoint}}/"),
    ("post", f"{A}/model-endpoints/"), ("patch", f"{A}/model-endpoints/{{endpoint}}/"),
    ("delete", f"{A}/model-endpoints/{{endpoint}}/"),
]


@pytest.mark.parametrize("role", NOT_FOR_THEM)
def test_readers_seniors_and_raters_get_403_on_every_draft_and_endpoint_url(
    world: World, role: str
) -> None:
    fail(world.draft)  # a retry would be allowed to a coordinator
    client = as_(world, role)
    for method, url in DRAFT_URLS:
        response = getattr(client, method)(fill(url, world), {}, format="json")
        assert response.status_code == 403, (method, url)
        assert DRAFT_TEXT not in response.content.decode()
    assert Draft.objects.get(pk=world.draft.pk).status == Draft.Status.FAILED


@pytest.mark.parametrize("role", NOT_FOR_THEM)
def test_no_api_response_gives_a_reader_senior_or_rater_the_draft(world: World,
                                                                   role: str) -> None:
    client = as_(world, role)
    for name, (url, _) in GETS.items():
        assert DRAFT_TEXT not in client.get(fill(url, world)).content.decode(), name


def test_a_draft_carries_its_content_config_and_timings(world: World) -> None:
    data = as_(world, "statistician").get(f"{A}/drafts/{world.draft.pk}/").json()
    assert data["case"] == "A-0001" and data["findings"] == DRAFT_TEXT
    assert data["backend"] == "demo" and data["is_demo"] is True
    assert data["fingerprint"] == world.endpoint.fingerprint
    assert data["config"] == world.endpoint.config()
    for name in ("impression", "raw_response", "error", "model_reported", "prompt_tokens",
                 "completion_tokens", "model_latency_ms", "total_latency_ms", "queued_at"):
        assert name in data


def test_drafts_filter_by_status(world: World, tmp_path) -> None:
    case = imported_case(world.trial, world.site, tmp_path, seed=1)
    failed = queue.ensure_draft(case, world.endpoint)
    fail(failed)
    client = as_(world, "coordinator")
    listed = client.get(f"{A}/drafts/", {"status": "failed"}).json()["results"]
    assert [d["id"] for d in listed] == [failed.pk]
    assert len(client.get(f"{A}/drafts/").json()["results"]) == 2
    bad = client.get(f"{A}/drafts/", {"status": "broken"})
    assert bad.status_code == 400 and "queued, running, done, failed" in bad.json()["detail"]


def test_retry_requeues_a_failed_draft_once_and_is_audited(world: World, tmp_path) -> None:
    case = imported_case(world.trial, world.site, tmp_path, seed=1)
    draft = queue.ensure_draft(case, world.endpoint)
    fail(draft)
    client = as_(world, "coordinator")
    response = client.post(f"{A}/drafts/{draft.pk}/retry/")
    assert response.status_code == 202
    assert response.json()["status"] == "done"  # no broker in tests: it has run (demo)
    assert AuditEvent.objects.filter(action="draft.retried", object_id=str(draft.pk),
                                     actor=world.users["coordinator"]).exists()
    again = client.post(f"{A}/drafts/{draft.pk}/retry/")
    assert again.status_code == 409 and "only a failed draft" in again.json()["detail"].lower()


def test_retry_of_a_draft_of_an_earlier_configuration_is_409(world: World) -> None:
    fail(world.draft)
    as_(world, "coordinator").patch(f"{A}/model-endpoints/{world.endpoint.pk}/",
                                    {"prompt_template": "Report {age}."}, format="json")
    response = as_(world, "coordinator").post(f"{A}/drafts/{world.draft.pk}/retry/")
    assert response.status_code == 409 and "earlier endpoint configuration" in (
        response.json()["detail"])
    assert Draft.objects.get(pk=world.draft.pk).status == Draft.Status.FAILED


def test_endpoint_edit_is_audited_and_changes_the_fingerprint(world: World) -> None:
    url = f"{A}/model-endpoints/{world.endpoint.pk}/"
    before = world.endpoint.fingerprint
    response = as_(world, "coordinator").patch(url, {"image_size": 512}, format="json")
    assert response.status_code == 200
    assert response.json()["fingerprint"] != before
    event = AuditEvent.objects.get(action="modelendpoint.changed")
    assert event.actor == world.users["coordinator"] and event.trial == world.trial
    assert (event.before["image_size"], event.after["image_size"]) == (384, 512)


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "Hosted", "backend": "openai", "active": False}, "non_field_errors"),
    ({"name": "Second", "backend": "demo", "active": True}, "active"),
    ({"name": "Hosted", "backend": "demo", "active": False, "prompt_template": "{weight}"},
     "prompt_template"),
    ({"name": "Hosted", "backend": "demo", "active": False, "api_key_env": "MY KEY"},
     "api_key_env"),
])
def test_invalid_endpoints_are_refused_with_the_reason(world: World, body: dict,
                                                       field: str) -> None:
    response = as_(world, "coordinator").post(f"{A}/model-endpoints/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert ModelEndpoint.objects.filter(trial=world.trial).count() == 1


def test_the_key_value_never_leaves_the_server(world: World, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CXR_MODEL_KEY", SECRET)
    client = as_(world, "coordinator")
    created = client.post(f"{A}/model-endpoints/", {
        "name": "Hosted", "backend": "openai", "active": False, "api_key_env": "CXR_MODEL_KEY",
        "base_url": "https://models.example.org/v1", "model_name": "cxr-7b",
    }, format="json")
    assert created.status_code == 201
    url = f"{A}/model-endpoints/{created.json()['id']}/"
    client.patch(url, {"timeout_s": 30}, format="json")
    readable = [(role, path) for role in ("coordinator", "statistician")
                for path in (f"{A}/model-endpoints/", url, f"{A}/drafts/")]
    for role, path in [*readable, ("coordinator", f"{A}/audit/")]:
        response = as_(world, role).get(path)
        assert response.status_code == 200, (path, role)
        assert SECRET not in response.content.decode(), (path, role)
    assert [k for k in created.json() if "key" in k] == ["api_key_env"]
    out = tmp_path / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(out),
                 stdout=io.StringIO())
    schema = json.loads(out.read_text())["components"]["schemas"]["ModelEndpoint"]
    assert [k for k in schema["properties"] if "key" in k] == ["api_key_env"]


# --- prompt templates: only the documented placeholders (security issue 18) ----------------

# template -> what the 400's message quotes
BAD_TEMPLATES = {
    "attribute": ("Report {age.foo}.", "{age.foo}"),  # was a 500 (AttributeError)
    "dunder": ("Report {age.__class__.__mro__}.", "{age.__class__.__mro__}"),
    "index": ("Report {age[a]}.", "{age[a]}"),  # was a 500 (TypeError)
    "width": ("Report {age:>50000000}.", "{age:>50000000}"),  # was a 50 MB prompt
    "nested width": ("Report {age:>{history}}.", "{age:>{history}}"),
    "conversion": ("Report {age!r}.", "{age!r}"),
    "positional": ("Report {} {0}.", "{}"),
    "unknown": ("Report {weight}.", "{weight}"),
    "unbalanced": ("Report {age.", "Malformed placeholder"),
    "stray brace": ("Report } {age}.", "Malformed placeholder"),
}


@pytest.mark.parametrize(("template", "quoted"), BAD_TEMPLATES.values(), ids=BAD_TEMPLATES.keys())
def test_a_template_with_anything_but_a_documented_placeholder_is_a_400_with_the_reason(
    world: World, template: str, quoted: str
) -> None:
    client = as_(world, "coordinator")
    created = client.post(f"{A}/model-endpoints/", {
        "name": "Hosted", "backend": "demo", "active": False, "prompt_template": template,
    }, format="json")
    edited = client.patch(f"{A}/model-endpoints/{world.endpoint.pk}/",
                          {"prompt_template": template}, format="json")
    for response in (created, edited):
        assert response.status_code == 400, response.content[:300]
        (message,) = response.json()["prompt_template"]
        assert quoted in message and "{" in message and len(message) < 400, message
    assert ModelEndpoint.objects.filter(trial=world.trial).count() == 1
    world.endpoint.refresh_from_db()
    assert world.endpoint.prompt_template != template


def test_a_template_with_the_documented_placeholders_and_escaped_braces_is_accepted(
    world: World
) -> None:
    template = "Answer as {{\"findings\": ...}}. Age {age}, sex {sex}. History: {history}"
    response = as_(world, "coordinator").patch(
        f"{A}/model-endpoints/{world.endpoint.pk}/", {"prompt_template": template},
        format="json")
    assert response.status_code == 200 and response.json()["prompt_template"] == template


# --- a done draft with a warning (security issue 12) ----------------------------------------

def test_a_draft_carries_its_warning(world: World) -> None:
    warning = "The model's reply has no FINDINGS or IMPRESSION header."
    Draft.objects.filter(pk=world.draft.pk).update(warning=warning)
    client = as_(world, "coordinator")
    assert client.get(f"{A}/drafts/{world.draft.pk}/").json()["warning"] == warning
    assert [d["warning"] for d in client.get(f"{A}/drafts/").json()["results"]] == [warning]


@pytest.mark.parametrize(("field", "value"), [
    ("max_tokens", 2**63 - 1), ("max_tokens", 0), ("retry_backoff_s", 1.7e308),
    ("name", "Endpoint\u202e"), ("model_name", "model\nx"), ("prompt_template", "x" * 10_001),
])
def test_endpoint_fields_have_bounds(world, field: str, value) -> None:
    """Hole 17 of the security audit: ``max_tokens`` of 2**63-1 and a backoff of 1.7e308 s
    were stored."""
    client = APIClient()
    client.force_authenticate(world.users["coordinator"])
    url = f"/api/trials/trial-a/model-endpoints/{world.endpoint.pk}/"
    response = client.patch(url, {field: value}, format="json")
    assert response.status_code == 400 and field in response.json(), response.content[:200]
