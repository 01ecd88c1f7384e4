"""The LLM labeller against a real OpenAI-compatible HTTP server (``fake_model``).

Texts are sent as a task runs without a broker does: in-process, the backoff slept here (the
labellers below retry without delay). Labels are validated against the JSON schema; an invalid
reply is retried then failed with its reason, never guessed.
"""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from metrics import jobs, prompts, run, tasks
from metrics.models import ChatJob, Labeller, Labelling
from tests.support.draft_world import dead_url
from tests.support.factories import TrialFactory
from tests.support.fake_openai import Reply
from trial.findings import FINDINGS

REPORT = "Small right pleural effusion. Possible left basal consolidation. No pneumothorax."


def reply(**values) -> str:
    labels = dict.fromkeys(FINDINGS, 0)
    labels.update(values)
    return json.dumps(labels)


GOOD = reply(**{"Pleural Effusion": 1, "Consolidation": "uncertain"})


@pytest.fixture
def labeller(db, fake_model) -> Labeller:
    return Labeller.objects.create(
        trial=TrialFactory(), name="LLM", kind=Labeller.Kind.LLM, base_url=fake_model.url,
        model_name="labeller-model", max_attempts=3, retry_backoff_s=0.0, timeout_s=5)


def label_now(labeller: Labeller, *texts: str) -> list[Labelling]:
    rows = jobs.label(labeller, texts)
    tasks.send_all(rows)
    return [Labelling.objects.get(pk=row.pk) for row in rows]


def test_reply_is_stored_as_labels_with_uncertain_as_positive(labeller, fake_model) -> None:
    fake_model.script([Reply(content=GOOD)])
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.DONE
    assert row.labels == {**dict.fromkeys(FINDINGS, 0), "Pleural Effusion": 1,
                          "Consolidation": 1}
    assert row.uncertain == ["Consolidation"]
    assert (row.attempts, row.model_reported) == (1, "fake-cxr-model")


def test_uncertain_as_negative_policy(labeller, fake_model) -> None:
    labeller.uncertain_policy = Labeller.Uncertain.NEGATIVE
    labeller.save()
    fake_model.script([Reply(content=GOOD)])
    (row,) = label_now(labeller, REPORT)
    assert (row.labels["Consolidation"], row.labels["Pleural Effusion"]) == (0, 1)
    assert row.uncertain == ["Consolidation"]


def test_request_carries_the_prompt_the_report_and_the_model(labeller, fake_model) -> None:
    fake_model.script([Reply(content=GOOD)])
    label_now(labeller, REPORT)
    (request,) = fake_model.requests
    body = request.body
    assert request.path == "/v1/chat/completions"
    assert (body["model"], body["temperature"]) == ("labeller-model", 0.0)
    system, user = body["messages"]
    assert system == {"role": "system", "content": labeller.prompt}
    assert REPORT in user["content"]
    for name in FINDINGS:
        assert f'"{name}"' in system["content"]


def test_a_fenced_json_reply_is_read(labeller, fake_model) -> None:
    fake_model.script([Reply(content=f"```json\n{GOOD}\n```")])
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.DONE and row.labels["Pleural Effusion"] == 1


def test_invalid_json_is_retried_then_failed_with_its_reason(labeller, fake_model) -> None:
    fake_model.script([Reply(content="Pleural effusion: yes")] * 3)
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.FAILED
    assert len(fake_model.requests) == 3
    assert "Gave up after 3 attempts" in row.error and "not JSON" in row.error
    assert row.raw_response == "Pleural effusion: yes"
    assert row.labels is None


def test_invalid_then_valid_reply_is_done(labeller, fake_model) -> None:
    fake_model.script([Reply(content="{not json"), Reply(content=GOOD)])
    (row,) = label_now(labeller, REPORT)
    assert (row.status, row.attempts, len(fake_model.requests)) == (ChatJob.Status.DONE, 2, 2)
    assert row.error == ""


@pytest.mark.parametrize(("content", "reason"), [
    (json.dumps({"Pleural Effusion": 1}), "'No Finding' is a required property"),
    (reply(Fracture=2), "Fracture: 2 is not one of"),
    (reply(Fracture=True), "true/false"),
    (json.dumps({**json.loads(reply()), "Pneumonitis": 1}),
     "Additional properties are not allowed"),
    (json.dumps([0] * 14), "is not of type 'object'"),
])
def test_partial_or_wrong_replies_fail_with_the_schema_reason(
        labeller, fake_model, content, reason) -> None:
    labeller.max_attempts = 1
    labeller.save()
    fake_model.script([Reply(content=content)])
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.FAILED
    assert reason in row.error, row.error
    assert row.labels is None


def test_labelling_twice_makes_no_second_call(labeller, fake_model) -> None:
    fake_model.default = Reply(content=GOOD)
    first = label_now(labeller, REPORT, "Normal chest.", REPORT)
    assert len(first) == 2 and len(fake_model.requests) == 2
    assert jobs.label(labeller, [REPORT, "Normal chest."]) == []
    assert len(fake_model.requests) == 2
    assert Labelling.objects.count() == 2


def test_a_changed_prompt_is_a_new_configuration(labeller, fake_model) -> None:
    fake_model.default = Reply(content=GOOD)
    label_now(labeller, REPORT)
    labeller.prompt += " Answer carefully."
    labeller.save()
    (again,) = label_now(labeller, REPORT)
    assert again.status == ChatJob.Status.DONE
    assert Labelling.objects.count() == 2 and len(fake_model.requests) == 2


def test_a_row_queued_before_its_labeller_changed_fails_with_the_reason(
        labeller, fake_model) -> None:
    (row,) = jobs.label(labeller, [REPORT])
    labeller.model_name = "another-model"
    labeller.save()
    run.run_job("label", row.pk)
    row.refresh_from_db()
    assert row.status == ChatJob.Status.FAILED and "configuration changed" in row.error
    assert fake_model.requests == []


def test_a_dead_server_is_retried_then_failed_and_retryable(labeller, fake_model) -> None:
    labeller.base_url = dead_url()
    labeller.save()
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.FAILED and "Cannot reach" in row.error
    assert row.attempts == 3 and len(fake_model.requests) == 0


def test_failed_rows_are_requeued_on_request(labeller, fake_model) -> None:
    labeller.max_attempts = 1
    labeller.save()
    fake_model.script([Reply(status=503)])
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.FAILED and "HTTP 503" in row.error
    fake_model.script([Reply(content=GOOD)])
    requeued = jobs.requeue_failed(labeller)
    tasks.send_all(requeued)
    row.refresh_from_db()
    assert row.status == ChatJob.Status.DONE and row.labels["Pleural Effusion"] == 1


def test_a_client_error_is_not_retried(labeller, fake_model) -> None:
    fake_model.script([Reply(status=400)])
    (row,) = label_now(labeller, REPORT)
    assert row.status == ChatJob.Status.FAILED and len(fake_model.requests) == 1


def test_the_api_key_comes_from_the_named_environment_variable(
        labeller, fake_model, monkeypatch) -> None:
    monkeypatch.setenv("CXR_TEST_LABELLER_KEY", "sk-label-1")
    labeller.api_key_env = "CXR_TEST_LABELLER_KEY"
    labeller.save()
    fake_model.script([Reply(content=GOOD)])
    label_now(labeller, REPORT)
    headers = {k.lower(): v for k, v in fake_model.requests[0].headers.items()}
    assert headers["authorization"] == "Bearer sk-label-1"


def test_concurrency_limit_holds_over_threads(transactional_db, labeller, fake_model) -> None:
    labeller.concurrency = 2
    labeller.save()
    fake_model.default = Reply(content=GOOD, delay=0.2)
    rows = jobs.label(labeller, [f"Report {i}." for i in range(6)])

    def work(pk: int) -> None:
        try:
            run.run_job("label", pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(row.pk,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake_model.max_in_flight == 2
    assert Labelling.objects.filter(status=ChatJob.Status.DONE).count() == 6


def test_schema_lists_the_fourteen_findings() -> None:
    assert prompts.LABEL_SCHEMA["required"] == list(FINDINGS)
