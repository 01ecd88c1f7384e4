"""``manage.py generate_drafts`` and ``check_model`` against a real OpenAI-compatible server.

No REDIS_URL in the tests: tasks run in-process, so each draft is made while it is queued.
"""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from drafting.models import Draft, ModelEndpoint
from drafting.queue import ensure_draft
from tests.support.celery_helpers import celery_on_redis
from tests.support.draft_world import closed_port
from tests.support.factories import SiteFactory, TrialFactory, UserFactory
from tests.support.fake_openai import REPORT, Reply
from tests.support.servers import free_port
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.models import AuditEvent, Case

pytestmark = pytest.mark.django_db

SECRET = "sk-test-0123456789-never-printed"


@pytest.fixture
def site():
    return SiteFactory(trial=TrialFactory(slug="cxr"), code="H1")


@pytest.fixture
def endpoint(site, fake_model) -> ModelEndpoint:
    return ModelEndpoint.objects.create(
        trial=site.trial, name="vllm", base_url=fake_model.url, model_name="cxr-model",
        max_attempts=1, retry_backoff_s=0,
    )


def add_cases(site, tmp_path, count: int, *, status: str = Case.Status.ENROLLED) -> list[Case]:
    """``count`` cases with one small synthetic image each, imported for real."""
    folder = tmp_path / f"dicom-{status}"
    for n in range(count):
        make_cxr(folder / f"{n}.dcm", seed=n, rows=64, columns=48, patient_id=f"P{status}{n}",
                 accession=f"A{status}{n}")
    before = set(Case.objects.values_list("pk", flat=True))
    import_path(folder, trial=site.trial, site=site)
    cases = Case.objects.filter(trial=site.trial).exclude(pk__in=before)
    cases.update(status=status)
    return list(cases)


def run(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(command: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), str(raised.value)


# --- generate_drafts ---------------------------------------------------------------------

def test_generate_drafts_makes_a_draft_for_every_enrolled_case(site, endpoint, fake_model,
                                                               tmp_path) -> None:
    enrolled = add_cases(site, tmp_path, 3)
    add_cases(site, tmp_path, 1, status=Case.Status.SCREENED)
    out, err = run("generate_drafts", "--trial", "cxr")
    drafts = Draft.objects.filter(endpoint=endpoint)
    assert sorted(d.case_id for d in drafts) == sorted(c.pk for c in enrolled)
    assert {d.status for d in drafts} == {Draft.Status.DONE}
    assert len(fake_model.requests) == 3
    assert "Summary: 3 done, 0 failed, 0 still queued or running." in out
    assert "Model latency: mean" in out and "p95" in out
    assert "] 1/3 queued" in err and "] 2/3 queued" in err  # the bar moves per case
    assert "[##############################] 3/3" in err


def test_generate_drafts_sends_a_queued_draft_that_was_never_sent(site, endpoint,
                                                                   tmp_path) -> None:
    (case,) = add_cases(site, tmp_path, 1)
    draft = ensure_draft(case, endpoint)
    out, _ = run("generate_drafts", "--trial", "cxr")
    draft.refresh_from_db()
    assert draft.status == Draft.Status.DONE
    assert "0 new, 1 never sent" in out


def test_generate_drafts_leaves_finished_drafts_alone(site, endpoint, fake_model,
                                                      tmp_path) -> None:
    add_cases(site, tmp_path, 2)
    run("generate_drafts", "--trial", "cxr")
    out, _ = run("generate_drafts", "--trial", "cxr")
    assert len(fake_model.requests) == 2
    assert "Queued 0 drafts" in out


def test_retry_failed_runs_failed_drafts_again(site, endpoint, fake_model, tmp_path) -> None:
    (case,) = add_cases(site, tmp_path, 1)
    fake_model.default = Reply(status=400)
    out, _ = run("generate_drafts", "--trial", "cxr")
    assert f"  {case.case_id}: HTTP 400 from the model server" in out
    fake_model.default = Reply()
    out, _ = run("generate_drafts", "--trial", "cxr")  # without the flag: left failed
    assert "1 earlier failed drafts of this endpoint" in out
    coordinator = UserFactory(username="coord")
    out, _ = run("generate_drafts", "--trial", "cxr", "--retry-failed", "--by", "coord")
    draft = Draft.objects.get(case=case)
    assert (draft.status, draft.error, len(fake_model.requests)) == (Draft.Status.DONE, "", 2)
    assert "1 failed re-queued" in out
    assert AuditEvent.objects.filter(action="draft.retried", actor=coordinator).count() == 1


def test_retry_failed_with_the_broker_down_counts_the_draft_as_not_sent(site, endpoint,
                                                                          fake_model,
                                                                          tmp_path) -> None:
    (case,) = add_cases(site, tmp_path, 1)
    fake_model.default = Reply(status=400)
    run("generate_drafts", "--trial", "cxr")
    with celery_on_redis(f"redis://127.0.0.1:{closed_port()}/0"):
        out, _ = run("generate_drafts", "--trial", "cxr", "--retry-failed")
    draft = Draft.objects.get(case=case)
    assert (draft.status, draft.sent_at) == (Draft.Status.QUEUED, None)  # the sweep sends it
    assert "Queued 1 drafts: 0 new, 0 never sent, 1 failed re-queued." in out
    assert "1 could not be handed to the queue" in out
    assert "left alone" not in out
    assert AuditEvent.objects.filter(action="draft.retried").count() == 1


NO_HEADERS = "The lungs are clear. Heart size is normal. No effusion."


def test_generate_drafts_counts_and_lists_done_drafts_with_a_warning(
        site, endpoint, fake_model, tmp_path) -> None:
    cases = sorted(add_cases(site, tmp_path, 2), key=lambda c: c.case_id)
    fake_model.script([Reply(content=NO_HEADERS)])  # the first case's reply has no headers
    out, _ = run("generate_drafts", "--trial", "cxr", "--wait")
    assert "Summary: 2 done (1 with a warning), 0 failed, 0 still queued or running." in out
    warned = Draft.objects.get(warning__gt="")
    assert (warned.status, warned.findings, warned.impression) == (
        Draft.Status.DONE, NO_HEADERS, "")
    assert "Done with a warning" in out
    assert f"  {warned.case.case_id}: The model's reply has no FINDINGS or IMPRESSION header" in (
        out)
    assert {d.case_id for d in Draft.objects.all()} == {c.pk for c in cases}


def test_no_active_endpoint_is_a_command_error(site, tmp_path) -> None:
    add_cases(site, tmp_path, 1)
    _, error = run_failing("generate_drafts", "--trial", "cxr")
    assert "no active model endpoint" in error
    assert not Draft.objects.exists()


def test_an_unknown_trial_is_a_command_error(db) -> None:
    _, error = run_failing("generate_drafts", "--trial", "nope")
    assert "unknown trial 'nope'" in error


def test_wait_exits_zero_when_every_draft_is_done(site, endpoint, tmp_path) -> None:
    add_cases(site, tmp_path, 2)
    out, _ = run("generate_drafts", "--trial", "cxr", "--wait")
    assert "Summary: 2 done, 0 failed" in out


def test_wait_exits_non_zero_when_a_draft_fails(site, endpoint, fake_model, tmp_path) -> None:
    add_cases(site, tmp_path, 2)
    fake_model.script([Reply(status=400)])
    out, error = run_failing("generate_drafts", "--trial", "cxr", "--wait")
    assert "Summary: 1 done, 1 failed, 0 still queued or running." in out
    assert error == "Drafts not all done: 1 failed."


def test_wait_exits_non_zero_on_timeout(site, endpoint, tmp_path) -> None:
    (case,) = add_cases(site, tmp_path, 1)
    draft = ensure_draft(case, endpoint)  # handed to a queue no worker reads
    Draft.objects.filter(pk=draft.pk).update(sent_at=draft.queued_at)
    out, error = run_failing("generate_drafts", "--trial", "cxr", "--wait", "--timeout", "0.2")
    assert "1 still queued or running" in out
    assert error == "Drafts not all done: 1 unfinished after 0.2 s."


# --- check_model -------------------------------------------------------------------------

def test_check_model_prints_the_reply_parsed_report_and_latency(endpoint, fake_model) -> None:
    fake_model.default = Reply(delay=0.05)
    out, _ = run("check_model", "--trial", "cxr")
    assert f"URL:         {fake_model.url}" in out
    assert f"fingerprint: {endpoint.fingerprint}" in out
    assert "  " + REPORT.splitlines()[0] in out
    assert "Parsed IMPRESSION:\n  Normal chest." in out
    assert "Reported model: fake-cxr-model (the endpoint asks for cxr-model)" in out
    assert "Tokens: prompt 600, completion 40" in out
    latency = int(out.split("Latency: model call ")[1].split(" ms")[0])
    assert latency >= 50
    assert not Draft.objects.exists()


def test_check_model_sends_the_image_preprocessed_as_drafts_are(endpoint, fake_model) -> None:
    run("check_model", "--trial", "cxr")
    content = fake_model.requests[0].body["messages"][0]["content"]
    assert "Chief complaint: Cough and fever for 5 days" in content[0]["text"]
    url = content[1]["image_url"]["url"]
    png = PILImage.open(io.BytesIO(base64.b64decode(url.removeprefix("data:image/png;base64,"))))
    assert (png.format, png.mode, png.size) == ("PNG", "RGB", (384, 384))
    assert png.getpixel((0, 192)) == (127, 127, 127)  # the short side is padded with grey


def test_check_model_reports_a_server_error_and_exits_non_zero(endpoint, fake_model) -> None:
    fake_model.default = Reply(status=500)
    out, error = run_failing("check_model", "--trial", "cxr")
    assert "Error (retryable: a draft would be tried again, up to max attempts):" in out
    assert "HTTP 500 from the model server" in out
    assert error.startswith("The model endpoint did not give a report: HTTP 500")


def test_check_model_reports_a_refused_request_as_not_retryable(endpoint, fake_model) -> None:
    fake_model.default = Reply(status=401)
    out, _ = run_failing("check_model", "--trial", "cxr")
    assert "Error (not retryable: a draft would fail at once):" in out


def test_check_model_reports_a_dead_server(endpoint) -> None:
    endpoint.base_url = f"http://127.0.0.1:{free_port()}/v1"
    endpoint.save()
    out, _ = run_failing("check_model", "--trial", "cxr")
    assert "Error (retryable" in out and "Cannot reach" in out


def test_check_model_says_when_the_backend_is_demo(site) -> None:
    ModelEndpoint.objects.create(trial=site.trial, name="demo", backend="demo")
    out, _ = run("check_model", "--trial", "cxr")
    assert "backend:     demo: an offline stand-in, NOT a model." in out
    assert "Note: the demo backend answered; no model was asked." in out


def test_check_model_picks_an_endpoint_by_name(endpoint, fake_model) -> None:
    _, error = run_failing("check_model", "--trial", "cxr", "--endpoint", "other")
    assert error == "Trial 'cxr' has no endpoint named 'other' (endpoints: vllm)."


def test_the_api_key_is_sent_but_never_printed(site, endpoint, fake_model, tmp_path,
                                               monkeypatch) -> None:
    monkeypatch.setenv("CXR_TEST_MODEL_KEY", SECRET)
    endpoint.api_key_env = "CXR_TEST_MODEL_KEY"
    endpoint.save()
    add_cases(site, tmp_path, 1)
    printed = "".join(run("check_model", "--trial", "cxr"))
    printed += "".join(run("generate_drafts", "--trial", "cxr", "--wait"))
    fake_model.default = Reply(status=401, body=b'{"error": "bad key"}')
    printed += "".join(run_failing("check_model", "--trial", "cxr"))
    assert "API key:     from $CXR_TEST_MODEL_KEY (set here)" in printed
    assert SECRET not in printed
    assert [r.headers["Authorization"] for r in fake_model.requests] == [f"Bearer {SECRET}"] * 3


def test_check_model_warns_and_says_no_ok_when_the_reply_has_no_headers(endpoint,
                                                                        fake_model) -> None:
    fake_model.default = Reply(content=NO_HEADERS)
    out, _ = run("check_model", "--trial", "cxr")
    assert "Parsed IMPRESSION:\n  (empty)" in out
    assert "WARNING: The model's reply has no FINDINGS or IMPRESSION header" in out
    assert "OK: the endpoint answers" not in out


def test_check_model_refuses_an_invalid_stored_template_without_formatting_it(endpoint,
                                                                              fake_model) -> None:
    # Saved before templates were checked (``update`` skips ``clean``).
    ModelEndpoint.objects.filter(pk=endpoint.pk).update(prompt_template="{age:>50000000}")
    _, error = run_failing("check_model", "--trial", "cxr")
    assert error.startswith("The endpoint's prompt template is invalid: Placeholder "
                            "{age:>50000000} has a format specification")
    assert fake_model.requests == []
