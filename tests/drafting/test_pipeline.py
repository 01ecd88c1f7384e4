"""Making a draft in-process against a real OpenAI-compatible HTTP server (``fake_model``).

``run_draft`` is one model call; the eager ``generate_draft`` task loops it with the backoff,
as a worker without a broker does.
"""

from __future__ import annotations

import base64
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from drafting import limits, queue, run, tasks
from drafting.backends import DEMO_MODEL
from drafting.models import Draft, ModelEndpoint
from drafting.preprocess import model_png
from drafting.tasks import generate_draft
from tests.support.draft_world import DraftWorld, dead_url, draft_world, imported_case
from tests.support.factories import UserFactory
from tests.support.fake_openai import REPORT, Reply
from trial.models import AuditEvent


@pytest.fixture
def world(db, tmp_path, fake_model) -> DraftWorld:
    return draft_world(tmp_path / "src", fake_model.url)


def draft_of(world: DraftWorld) -> Draft:
    return Draft.objects.get(case=world.case)


def run_task(world: DraftWorld) -> Draft:
    """The eager task: run, sleep the backoff, run again... until done or failed."""
    generate_draft.apply((world.case.pk,)).get()
    return draft_of(world)


# --- the request ---------------------------------------------------------------------------

def test_request_posts_to_chat_completions_with_model_and_sampling(world, fake_model) -> None:
    world.endpoint.max_tokens, world.endpoint.temperature = 300, 0.2
    world.endpoint.save()
    run.run_draft(world.case.pk)
    (request,) = fake_model.requests
    assert request.path == "/v1/chat/completions"
    assert (request.body["model"], request.body["max_tokens"], request.body["temperature"]) == (
        "fake-cxr-model", 300, 0.2)


def test_image_part_is_the_model_png_as_a_data_url(world, fake_model) -> None:
    run.run_draft(world.case.pk)
    (part,) = [p for p in fake_model.requests[0].body["messages"][0]["content"]
               if p["type"] == "image_url"]
    prefix, encoded = part["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert base64.b64decode(encoded) == model_png(world.case.images.get())


def test_text_part_carries_the_clinical_record(world, fake_model) -> None:
    run.run_draft(world.case.pk)
    (part,) = [p for p in fake_model.requests[0].body["messages"][0]["content"]
               if p["type"] == "text"]
    for field in ("chief_complaint", "history", "lab_results"):
        assert getattr(world.case, field) in part["text"]


def headers(request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def test_bearer_key_is_read_from_the_named_environment_variable(
        world, fake_model, monkeypatch) -> None:
    monkeypatch.setenv("CXR_TEST_MODEL_KEY", "sk-test-123")
    world.endpoint.api_key_env = "CXR_TEST_MODEL_KEY"
    world.endpoint.save()
    run.run_draft(world.case.pk)
    assert headers(fake_model.requests[0])["authorization"] == "Bearer sk-test-123"


def test_no_authorization_header_without_a_key_variable(world, fake_model) -> None:
    run.run_draft(world.case.pk)
    assert "authorization" not in headers(fake_model.requests[0])


def test_a_named_but_unset_key_variable_fails_at_once(world, fake_model, monkeypatch) -> None:
    monkeypatch.delenv("CXR_TEST_MISSING_KEY", raising=False)
    world.endpoint.api_key_env = "CXR_TEST_MISSING_KEY"
    world.endpoint.save()
    assert run.run_draft(world.case.pk).retry_in is None
    draft = draft_of(world)
    assert (draft.status, draft.attempts) == (Draft.Status.FAILED, 1)
    assert "CXR_TEST_MISSING_KEY" in draft.error
    assert fake_model.requests == []


# --- what is stored ------------------------------------------------------------------------

def test_a_done_draft_stores_report_usage_timings_and_config(world, fake_model) -> None:
    fake_model.script([Reply(delay=0.1)])
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    draft = draft_of(world)
    assert (draft.status, draft.attempts, draft.backend) == (Draft.Status.DONE, 1, "openai")
    assert (draft.findings, draft.impression) == (
        "The lungs are clear. No pleural effusion.", "Normal chest.")
    assert draft.raw_response == REPORT
    assert draft.model_reported == "fake-cxr-model"
    assert (draft.prompt_tokens, draft.completion_tokens) == (600, 40)
    assert 100 <= draft.model_latency_ms <= draft.total_latency_ms
    assert draft.fingerprint == world.endpoint.fingerprint
    assert draft.config == world.endpoint.config()
    assert (draft.claim, draft.lease_until, draft.error, draft.warning) == ("", None, "", "")
    assert draft.finished_at is not None


def test_a_reply_without_headers_is_done_with_a_warning_audited(world, fake_model) -> None:
    reply = "The lungs are clear. Heart size is normal."
    fake_model.script([Reply(content=reply)])
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    draft = draft_of(world)
    assert (draft.findings, draft.impression) == (reply, "")
    assert draft.warning == ("The model's reply has no FINDINGS or IMPRESSION header: all of it "
                             "was put in FINDINGS, and IMPRESSION is empty.")
    event = AuditEvent.objects.get(action="draft.done", object_id=str(draft.pk))
    assert event.after["warning"] == draft.warning


def test_an_invalid_template_saved_earlier_fails_the_draft_without_calling_the_model(
        world, fake_model) -> None:
    # Saved before templates were checked (``update`` skips ``clean``); never formatted now.
    ModelEndpoint.objects.filter(pk=world.endpoint.pk).update(
        prompt_template="History: {history.__class__}")
    assert run.run_draft(world.case.pk).status == Draft.Status.FAILED
    draft = draft_of(world)
    assert draft.error == ("The endpoint's prompt template is invalid: Placeholder "
                           "{history.__class__} has an attribute or index: write {history} "
                           "alone.")
    assert fake_model.requests == []


# --- retries and failures ------------------------------------------------------------------

def test_a_503_is_retried_then_done(world, fake_model) -> None:
    fake_model.script([Reply(status=503)])
    draft = run_task(world)
    assert (draft.status, draft.attempts, draft.error) == (Draft.Status.DONE, 2, "")
    assert len(fake_model.requests) == 2


def test_a_429_retry_after_sets_the_next_run(world, fake_model) -> None:
    fake_model.script([Reply(status=429, headers={"Retry-After": "7"})])
    outcome = run.run_draft(world.case.pk)
    assert outcome.retry_in == 7.0
    draft = draft_of(world)
    assert (draft.status, draft.attempts) == (Draft.Status.QUEUED, 1)
    assert "HTTP 429" in draft.error
    assert timedelta(seconds=6) < draft.sent_at - timezone.now() <= timedelta(seconds=7)


def test_a_timeout_is_retried_then_done(world, fake_model) -> None:
    world.endpoint.timeout_s = 0.2
    world.endpoint.save()
    fake_model.script([Reply(delay=0.6)])
    draft = run_task(world)
    assert (draft.status, draft.attempts) == (Draft.Status.DONE, 2)


def test_connection_refused_is_retried_then_fails_after_max_attempts(world) -> None:
    world.endpoint.base_url = dead_url()
    world.endpoint.save()
    draft = run_task(world)
    assert (draft.status, draft.attempts) == (Draft.Status.FAILED, 3)
    assert draft.error.startswith("Gave up after 3 attempts; last error: Cannot reach")


def test_a_400_fails_at_once(world, fake_model) -> None:
    fake_model.script([Reply(status=400)])
    draft = run_task(world)
    assert (draft.status, draft.attempts) == (Draft.Status.FAILED, 1)
    assert "HTTP 400" in draft.error


def test_a_body_that_is_not_json_fails_at_once(world, fake_model) -> None:
    fake_model.script([Reply(body=b"not json")])
    draft = run_task(world)
    assert (draft.status, draft.attempts) == (Draft.Status.FAILED, 1)
    assert "not JSON" in draft.error


def test_json_that_is_not_a_chat_completion_fails_at_once(world, fake_model) -> None:
    fake_model.script([Reply(body=b'{"result": "FINDINGS: clear"}')])
    draft = run_task(world)
    assert (draft.status, draft.attempts) == (Draft.Status.FAILED, 1)
    assert "not a chat completion" in draft.error


def test_headers_without_report_text_fail_keeping_the_raw_reply(world, fake_model) -> None:
    fake_model.script([Reply(content="FINDINGS:\nIMPRESSION:")])
    draft = run_task(world)
    assert (draft.status, draft.raw_response) == (Draft.Status.FAILED, "FINDINGS:\nIMPRESSION:")
    assert "no report text" in draft.error


@pytest.mark.parametrize("attempt", [1, 2, 3, 6])
def test_backoff_doubles_each_attempt_with_jitter(attempt: int) -> None:
    full = 2.0 * 2 ** (attempt - 1)
    delays = [run.backoff(attempt, 2.0) for _ in range(200)]
    assert all(full / 2 <= d <= full for d in delays)
    assert max(delays) - min(delays) > full / 4  # jittered, not a fixed delay


def test_backoff_is_capped() -> None:
    assert all(150 <= run.backoff(30, 2.0) <= run.BACKOFF_CAP_S for _ in range(50))


# --- idempotency ---------------------------------------------------------------------------

def test_running_twice_makes_one_draft_and_one_request(world, fake_model) -> None:
    run.run_draft(world.case.pk)
    second = run.run_draft(world.case.pk)
    assert (second.status, second.retry_in) == (Draft.Status.DONE, None)
    assert Draft.objects.filter(case=world.case).count() == 1
    assert len(fake_model.requests) == 1


def hold(world: DraftWorld, *, lease_in_s: float) -> None:
    """Mark the draft running under another run's claim, its lease ending in ``lease_in_s``."""
    draft = queue.ensure_draft(world.case, world.endpoint)
    Draft.objects.filter(pk=draft.pk).update(
        status=Draft.Status.RUNNING, claim="another-run", attempts=1,
        lease_until=timezone.now() + timedelta(seconds=lease_in_s))


def test_a_draft_running_under_a_live_lease_is_not_taken(world, fake_model) -> None:
    hold(world, lease_in_s=60)
    outcome = run.run_draft(world.case.pk)
    assert outcome.status == Draft.Status.RUNNING
    assert 59 < outcome.retry_in <= 61
    assert draft_of(world).claim == "another-run"
    assert fake_model.requests == []


def test_a_running_draft_whose_lease_expired_is_taken_over(world, fake_model) -> None:
    hold(world, lease_in_s=-1)
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    draft = draft_of(world)
    assert (draft.status, draft.attempts) == (Draft.Status.DONE, 2)


def test_a_run_that_lost_its_claim_cannot_store(world) -> None:
    stale, stale_claim, _ = run._claim(world.case.pk)
    Draft.objects.filter(pk=stale.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE  # the takeover
    assert run._store(stale, stale_claim, status=Draft.Status.FAILED, error="late") is False
    assert draft_of(world).status == Draft.Status.DONE


# --- fingerprint ---------------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("prompt_template", "Report this chest X-ray. History: {history}"),
    ("model_name", "another-model"),
])
def test_changing_what_the_model_is_asked_makes_a_new_draft(
        world, fake_model, field, value) -> None:
    run.run_draft(world.case.pk)
    before = world.endpoint.fingerprint
    setattr(world.endpoint, field, value)
    world.endpoint.save()
    assert world.endpoint.fingerprint != before
    run.run_draft(world.case.pk)
    assert Draft.objects.filter(case=world.case, status=Draft.Status.DONE).count() == 2
    assert len(fake_model.requests) == 2


@pytest.mark.parametrize("field, value", [
    ("timeout_s", 9.0), ("concurrency", 1), ("max_attempts", 9),
])
def test_changing_operational_limits_keeps_the_draft(world, fake_model, field, value) -> None:
    run.run_draft(world.case.pk)
    before = world.endpoint.fingerprint
    setattr(world.endpoint, field, value)
    world.endpoint.save()
    assert world.endpoint.fingerprint == before
    run.run_draft(world.case.pk)
    assert Draft.objects.filter(case=world.case).count() == 1
    assert len(fake_model.requests) == 1


# --- demo backend --------------------------------------------------------------------------

def test_the_demo_backend_makes_a_draft_labelled_demo(db, tmp_path) -> None:
    world = draft_world(tmp_path / "src", backend="demo", model_name="")
    draft = run_task(world)
    assert (draft.status, draft.backend, draft.is_demo) == (Draft.Status.DONE, "demo", True)
    assert draft.model_reported == DEMO_MODEL and "demo" in draft.model_reported
    assert draft.findings and draft.impression


def test_an_openai_endpoint_with_a_dead_server_fails_and_never_falls_back_to_demo(world) -> None:
    world.endpoint.base_url = dead_url()
    world.endpoint.save()
    draft = run_task(world)
    assert (draft.status, draft.backend, draft.is_demo) == (Draft.Status.FAILED, "openai", False)
    assert (draft.findings, draft.impression, draft.model_reported) == ("", "", "")


# --- retry of a failed draft ---------------------------------------------------------------

def test_retry_failed_requeues_audited_and_runs_to_done(world, fake_model) -> None:
    world.endpoint.max_attempts = 2
    world.endpoint.save()
    fake_model.script([Reply(status=503), Reply(status=503)])
    failed = run_task(world)
    assert (failed.status, failed.attempts) == (Draft.Status.FAILED, 2)
    coordinator = UserFactory()
    assert tasks.retry_failed(failed, by=coordinator) is True
    event = AuditEvent.objects.get(action="draft.retried")
    assert event.actor == coordinator
    assert event.before["status"] == "failed" and event.before["attempts"] == 2
    assert event.after == {"status": "queued"}
    draft = draft_of(world)  # eager: re-run at once, attempts counted from zero again
    assert (draft.status, draft.attempts, draft.error) == (Draft.Status.DONE, 1, "")


def test_retry_failed_refuses_a_done_draft(world) -> None:
    done = run_task(world)
    assert tasks.retry_failed(done) is False
    assert draft_of(world).status == Draft.Status.DONE
    assert not AuditEvent.objects.filter(action="draft.retried").exists()


# --- concurrency ---------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_endpoint_concurrency_caps_calls_in_flight(tmp_path, fake_model) -> None:
    world = draft_world(tmp_path / "src", fake_model.url, concurrency=2)
    cases = [world.case] + [imported_case(world.trial, world.site, tmp_path / "src", seed=s)
                            for s in range(2, 6)]
    fake_model.default = Reply(delay=0.3)

    def run_one(case_pk: int) -> None:
        try:
            run.run_draft(case_pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_one, args=(case.pk,)) for case in cases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert Draft.objects.filter(status=Draft.Status.DONE).count() == 5
    assert fake_model.max_in_flight == 2


def test_redis_slots_admit_at_most_the_limit(settings, redis_url) -> None:
    settings.REDIS_URL = redis_url
    endpoint_pk = 900_001  # no real endpoint: a key no other test uses
    inside, most, lock = 0, 0, threading.Lock()

    def call() -> None:
        nonlocal inside, most
        with limits.model_slot(endpoint_pk, limit=2, hold_s=10, wait_s=10):
            with lock:
                inside += 1
                most = max(most, inside)
            threading.Event().wait(0.2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert most == 2


def test_a_redis_slot_never_released_expires_after_hold_s(settings, redis_url) -> None:
    settings.REDIS_URL = redis_url
    endpoint_pk = 900_002
    abandoned = limits.model_slot(endpoint_pk, limit=1, hold_s=0.5, wait_s=1)
    abandoned.__enter__()  # its holder "dies": never leaves
    with pytest.raises(limits.NoSlot), limits.model_slot(endpoint_pk, limit=1, hold_s=5,
                                                         wait_s=0.1):
        pass
    with limits.model_slot(endpoint_pk, limit=1, hold_s=5, wait_s=2):
        pass  # taken once the abandoned slot expired


def test_a_lowered_concurrency_applies_in_process_without_a_restart(settings) -> None:
    settings.REDIS_URL = ""
    with limits.model_slot(900_003, limit=2, hold_s=5, wait_s=0.1):
        pass
    with (limits.model_slot(900_003, limit=1, hold_s=5, wait_s=0.1),
          pytest.raises(limits.NoSlot),
          limits.model_slot(900_003, limit=1, hold_s=5, wait_s=0.1)):
        pass
