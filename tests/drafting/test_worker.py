"""The AI-draft pipeline end to end: real Redis, real Celery worker processes, a real HTTP model.

The workers use the test's own PostgreSQL database (tests commit their data:
``transaction=True``) and media root, and call the fake chat-completions server the test
starts. Two prefork workers (2 processes each) are shared by the module; the worker-killed
tests start their own two solo workers (the task then runs in the process that is killed), one
of them with a real ``celery beat``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from PIL import Image as PILImage

from drafting.models import Draft, ModelEndpoint
from drafting.queue import ensure_draft
from drafting.tasks import generate_draft, queue_draft, send
from tests.support.celery_helpers import ROOT, celery_on_redis, celery_worker, wait_ready
from tests.support.factories import (
    CaseFactory,
    CriterionFactory,
    SiteFactory,
    TrialFactory,
    UserFactory,
)
from tests.support.fake_openai import REPORT, FakeOpenAI, Reply
from trial.dicom.importer import import_path
from trial.dicom.synthetic import make_cxr
from trial.enrolment import enrol, record_consent, screen
from trial.models import Case, Site

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ENV, KEY = "CXR_TEST_MODEL_KEY", "sk-test-worker-key"  # only the workers' environment has it
HISTORY = {"chief_complaint": "Fever and productive cough for 4 days",
           "history": "Type 2 diabetes; ex-smoker", "lab_results": "CRP 112 mg/L"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Workers:
    queue: str
    logs: list[Path]

    def report(self) -> str:
        """The tail of each worker's log, for a failure message."""
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}"
                         for log in self.logs)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _shared_media(_media_root, settings, media_dir: Path) -> None:
    """Images go where the module's workers read them (after conftest's per-test media root)."""
    settings.MEDIA_ROOT = media_dir


@pytest.fixture(scope="module")
def worker_env(django_db_setup, postgres, media_dir: Path) -> dict[str, str]:
    """The workers' environment: the test database, the media root, short leases, the key."""
    name = settings.DATABASES["default"]["NAME"]
    return {
        "DATABASE_URL": f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}",
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(media_dir),
        "DRAFT_LEASE_MARGIN_S": "1",
        KEY_ENV: KEY,
    }


@pytest.fixture(scope="module")
def workers(redis_url: str, worker_env: dict, tmp_path_factory) -> Iterator[Workers]:
    """Two prefork workers with two processes each, on one queue of this module."""
    queue, folder = unique("drafts"), tmp_path_factory.mktemp("workers")
    logs = [folder / "worker-1.log", folder / "worker-2.log"]
    with celery_worker(redis_url=redis_url, queue=queue, log=logs[0], name=f"w1-{queue}",
                       pool="prefork", concurrency=2, env=worker_env) as first, \
         celery_worker(redis_url=redis_url, queue=queue, log=logs[1], name=f"w2-{queue}",
                       pool="prefork", concurrency=2, env=worker_env) as second:
        wait_ready(first, logs[0])
        wait_ready(second, logs[1])
        yield Workers(queue, logs)
        for proc in (first, second):  # both warm shutdowns at once
            proc.send_signal(signal.SIGTERM)


@pytest.fixture
def routed(workers: Workers, redis_url: str) -> Iterator[Workers]:
    """Tasks sent by this test (``drafting.tasks.send``, ``.delay``) go to the module's workers."""
    with celery_on_redis(redis_url, queue=workers.queue):
        yield workers


@pytest.fixture
def site() -> Site:
    return SiteFactory(trial=TrialFactory(), code="H1")


def endpoint_for(site: Site, fake: FakeOpenAI, **fields) -> ModelEndpoint:
    return ModelEndpoint.objects.create(**{
        "trial": site.trial, "name": "fake", "backend": ModelEndpoint.Backend.OPENAI,
        "base_url": fake.url, "model_name": "cxr-test", "api_key_env": KEY_ENV,
        "timeout_s": 10, "retry_backoff_s": 0.05, **fields,
    })


def imported_case(site: Site, folder: Path, *, seed: int) -> Case:
    """A screened case with one synthetic CXR (imported for real) and its clinical history."""
    path = make_cxr(folder / f"cxr-{seed}.dcm", seed=seed, rows=320, columns=256,
                    patient_id=f"SYN{seed:06d}")
    job = import_path(path, trial=site.trial, site=site)
    case = Case.objects.get(trial=site.trial, case_id=job.report[0]["case"])
    Case.objects.filter(pk=case.pk).update(**HISTORY)
    case.refresh_from_db()
    return case


def enrolled_case(site: Site, folder: Path, *, seed: int) -> Case:
    """An imported case set to enrolled directly (enrolment itself is not under test)."""
    case = imported_case(site, folder, seed=seed)
    Case.objects.filter(pk=case.pk).update(status=Case.Status.ENROLLED)
    case.refresh_from_db()
    return case


def finished(case: Case, workers: Workers, *, timeout: float = 30) -> Draft:
    """The case's draft once it is done or failed (fails the test with the workers' logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        draft = Draft.objects.filter(case=case).first()
        if draft is not None and draft.status in (Draft.Status.DONE, Draft.Status.FAILED):
            return draft
        time.sleep(0.05)
    pytest.fail(f"the draft of {case} did not finish within {timeout} s:\n{workers.report()}")


def test_send_puts_the_draft_task_on_the_routed_queue(redis_url, site, fake_model) -> None:
    case = CaseFactory(trial=site.trial, site=site, status=Case.Status.ENROLLED)
    queue = unique("no-worker")
    with celery_on_redis(redis_url, queue=queue):
        assert send(ensure_draft(case, endpoint_for(site, fake_model)))
    client = redis.Redis.from_url(redis_url)
    messages = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
    client.delete(queue)
    assert [(m["headers"]["task"], json.loads(base64.b64decode(m["body"]))[0]) for m in messages
            ] == [("trial.tasks.generate_draft", [case.pk])]


def test_an_enrolled_case_gets_its_draft_from_the_model_via_a_worker(
    routed, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model)
    criterion = CriterionFactory(trial=site.trial)
    user = UserFactory()
    case = imported_case(site, tmp_path, seed=2)
    screen(case, answers={criterion.code: True}, by=user)
    record_consent(case, by=user)
    enrol(case, by=user)  # queues the draft on commit

    draft = finished(case, routed)
    assert (draft.status, draft.attempts, draft.backend, draft.model_reported) == (
        "done", 1, "openai", "fake-cxr-model")
    assert (draft.findings, draft.impression) == (
        "The lungs are clear. No pleural effusion.", "Normal chest.")
    assert (draft.raw_response, draft.prompt_tokens, draft.completion_tokens) == (REPORT, 600, 40)
    [request] = fake_model.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    text, image = request.body["messages"][0]["content"]
    assert all(value in text["text"] for value in HISTORY.values())
    prefix, data = image["image_url"]["url"].split(",", 1)
    assert prefix == "data:image/png;base64"
    assert PILImage.open(io.BytesIO(base64.b64decode(data))).size == (384, 384)


def test_a_503_is_retried_by_the_worker_until_the_model_answers(
    routed, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model)
    fake_model.script([Reply(status=503)])
    case = enrolled_case(site, tmp_path, seed=3)
    queue_draft(case)
    draft = finished(case, routed)
    assert (draft.status, draft.attempts, draft.error, len(fake_model.requests)) == (
        "done", 2, "", 2)


def test_a_timed_out_call_is_retried_by_the_worker_until_the_model_answers(
    routed, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model, timeout_s=0.5)
    fake_model.script([Reply(delay=1.5)])
    case = enrolled_case(site, tmp_path, seed=4)
    queue_draft(case)
    draft = finished(case, routed)
    assert (draft.status, draft.attempts, draft.findings, len(fake_model.requests)) == (
        "done", 2, "The lungs are clear. No pleural effusion.", 2)


@pytest.mark.parametrize(("reply", "reason"), [
    (Reply(status=400), "HTTP 400 from the model server"),
    (Reply(body=b"garbage"), "The model server's reply is not JSON: 'garbage'"),
], ids=["http-400", "garbage-json"])
def test_a_permanent_model_error_fails_the_draft_at_once_with_the_reason(
    routed, site, fake_model, tmp_path, reply, reason
) -> None:
    endpoint_for(site, fake_model)
    fake_model.script([reply])
    case = enrolled_case(site, tmp_path, seed=5)
    queue_draft(case)
    draft = finished(case, routed)
    assert (draft.status, draft.attempts, len(fake_model.requests)) == ("failed", 1, 1)
    assert draft.error.startswith(reason)


def settled(result, *, timeout: float = 30) -> str:
    """The task's state once it has run: SUCCESS, or RETRY when it deferred to another run."""
    deadline = time.monotonic() + timeout
    while result.state not in ("SUCCESS", "RETRY", "FAILURE"):
        if time.monotonic() > deadline:
            pytest.fail(f"task {result.id} did not run within {timeout} s")
        time.sleep(0.05)
    return result.state


def test_a_task_sent_twice_and_again_when_done_makes_one_draft_and_one_model_call(
    routed, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model)
    fake_model.script([Reply(delay=1.0)])  # the second delivery arrives while the first runs
    case = enrolled_case(site, tmp_path, seed=6)
    twice = [generate_draft.apply_async((case.pk,), ignore_result=False) for _ in range(2)]
    # One run makes the draft; the other finds it held and defers (a later run finds it done).
    assert sorted(settled(result) for result in twice) == ["RETRY", "SUCCESS"]
    assert finished(case, routed).status == "done"
    again = generate_draft.apply_async((case.pk,), ignore_result=False)
    assert again.get(timeout=30) == {"case": case.pk, "status": "done"}
    assert (Draft.objects.filter(case=case).count(), len(fake_model.requests)) == (1, 1)


def test_two_workers_keep_to_the_endpoints_concurrency_limit(
    routed, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model, concurrency=2)
    fake_model.default = Reply(delay=0.5)
    cases = [enrolled_case(site, tmp_path, seed=10 + n) for n in range(6)]
    for case in cases:
        queue_draft(case)  # four worker processes take them at once
    assert [finished(case, routed).status for case in cases] == ["done"] * 6
    assert (fake_model.max_in_flight, len(fake_model.requests)) == (2, 6)


def test_a_draft_whose_worker_was_killed_mid_call_is_finished_by_another_worker(
    redis_url, worker_env, site, fake_model, tmp_path
) -> None:
    endpoint_for(site, fake_model, timeout_s=2)  # lease: call start + 2 s + 1 s margin
    fake_model.script([Reply(delay=30)])  # the first worker's call hangs until it is killed
    case = enrolled_case(site, tmp_path, seed=7)
    queue = unique("kill")
    env = {**worker_env, "CELERY_VISIBILITY_TIMEOUT": "2"}  # unacked messages come back in 2 s
    logs = [tmp_path / "killed.log", tmp_path / "survivor.log"]
    with celery_on_redis(redis_url, queue=queue):
        queue_draft(case)
        with celery_worker(redis_url=redis_url, queue=queue, log=logs[0], name=f"a-{queue}",
                           env=env) as killed:  # solo pool: the task runs in this process
            fake_model.wait_for_requests(1, timeout=60)
            killed.kill()
            killed.wait()
        assert Draft.objects.get(case=case).status == Draft.Status.RUNNING
        with celery_worker(redis_url=redis_url, queue=queue, log=logs[1], name=f"b-{queue}",
                           env=env):
            draft = finished(case, Workers(queue, logs))
    assert (draft.status, draft.attempts, Draft.objects.filter(case=case).count(),
            len(fake_model.requests)) == ("done", 2, 1, 2)


@contextlib.contextmanager
def celery_beat(*, redis_url: str, log: Path, env: Mapping[str, str]) -> Iterator[None]:
    """A real ``celery -A config beat`` with the settings' schedule (a fresh schedule file)."""
    beat_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "REDIS_URL": redis_url,
                "DEMO_MODE": "1", "DATA_DIR": str(log.parent / "beat-data"), **env}
    beat_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info",
             "--schedule", str(log.parent / "beat-schedule")],
            cwd=ROOT, env=beat_env, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_killed_workers_draft_is_taken_over_by_beats_check_within_a_minute_of_its_lease(
    redis_url, worker_env, site, fake_model, tmp_path
) -> None:
    """Security issue 10: not Redis' redelivery (CELERY_VISIBILITY_TIMEOUT, an hour) but the
    beat's takeover check, on the settings' own schedule, finishes the draft."""
    url = redis_url.rsplit("/", 1)[0] + "/5"  # a Redis database of its own: the default
    redis.Redis.from_url(url).flushdb()  # queue ("celery"), as beat and the sweep use it
    endpoint_for(site, fake_model, timeout_s=3)  # lease: call start + 3 s + 1 s margin
    fake_model.script([Reply(delay=30)])  # the first worker's call hangs until it is killed
    case = enrolled_case(site, tmp_path, seed=8)
    assert "CELERY_VISIBILITY_TIMEOUT" not in worker_env  # the default: 3600 s
    logs = [tmp_path / name for name in ("killed.log", "survivor.log", "beat.log")]
    with celery_on_redis(url), celery_beat(redis_url=url, log=logs[2], env=worker_env):
        with celery_worker(redis_url=url, queue="celery", log=logs[0], name=unique("killed"),
                           env=worker_env) as killed:
            queue_draft(case)
            fake_model.wait_for_requests(1, timeout=60)
            killed.kill()
            killed.wait()
        lease = Draft.objects.get(case=case).lease_until
        assert Draft.objects.get(case=case).status == Draft.Status.RUNNING
        with celery_worker(redis_url=url, queue="celery", log=logs[1], name=unique("survivor"),
                           env=worker_env):
            draft = finished(case, Workers("celery", logs), timeout=120)
    taken_over_s = fake_model.requests[1].at - lease.timestamp()
    done_s = (draft.finished_at - lease).total_seconds()
    print(f"lease ran out -> taken over (second model call) {taken_over_s:.1f} s, "
          f"done {done_s:.1f} s (takeover check every {settings.DRAFT_TAKEOVER_SECONDS:g} s)")
    assert (draft.status, draft.attempts, Draft.objects.filter(case=case).count(),
            len(fake_model.requests)) == ("done", 2, 1, 2)
    assert 0 < taken_over_s < done_s < 60, Workers("celery", logs).report()
    assert "drafting.tasks.take_over_drafts" in logs[2].read_text()  # sent by beat


def test_the_admins_model_check_is_made_by_a_worker_with_the_key_of_its_environment(
    routed, site, fake_model, monkeypatch
) -> None:
    """The key is only in the workers' environment: the web process queues the check and a
    worker makes it, so the coordinator checks what the drafts will really send."""
    from drafting.checks import request_check
    from drafting.models import EndpointCheck

    monkeypatch.delenv(KEY_ENV, raising=False)
    endpoint = endpoint_for(site, fake_model)
    check = request_check(endpoint, by=UserFactory())
    assert check.status == EndpointCheck.Status.QUEUED
    deadline = time.monotonic() + 30
    while check.status == EndpointCheck.Status.QUEUED and time.monotonic() < deadline:
        time.sleep(0.05)
        check.refresh_from_db()
    assert check.status == EndpointCheck.Status.OK, routed.report()
    [request] = fake_model.requests
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "(set here)" in check.output and KEY not in check.output
    assert not Draft.objects.exists()
