"""Enrolment queues the AI draft on commit; a broker that is down loses nothing (the sweep)
and blocks nobody (a send gives up at once); a draft whose worker died is taken over once its
lease runs out (the takeover check, and the sweep)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from drafting import queue, run, tasks
from drafting.models import Draft, ModelEndpoint
from tests.support.celery_helpers import ROOT, celery_on_redis
from tests.support.draft_world import closed_port, imported_case, make_endpoint
from tests.support.factories import CriterionFactory, SiteFactory, UserFactory
from tests.support.servers import free_port
from trial import enrolment
from trial.models import AuditEvent, Case, Trial

SEND_BOUND_S = 2.0  # generous: a send to a broker that is down takes milliseconds now (was ~6 s)


@pytest.fixture
def trial(db) -> Trial:
    site = SiteFactory()
    CriterionFactory(trial=site.trial, code="suspected", text="Suspected thoracic disease")
    return site.trial


def screened(trial: Trial, folder, *, seed: int = 1) -> Case:
    """An imported case with a complete record, screened eligible and consented."""
    case = imported_case(trial, trial.sites.get(), folder, seed=seed, enrolled=False)
    user = UserFactory()
    enrolment.screen(case, answers={"suspected": True}, by=user)
    enrolment.record_consent(case, by=user)
    return case


def enrol(case: Case, capture) -> None:
    """Enrol and commit: the on-commit hooks run when the block ends."""
    with capture(execute=True) as callbacks:
        enrolment.enrol(case, by=UserFactory())
        assert not Draft.objects.filter(case=case).exists()  # nothing before the commit
    assert callbacks


def test_enrolment_queues_the_draft_on_commit_and_eager_runs_it(
        trial, tmp_path, fake_model, django_capture_on_commit_callbacks) -> None:
    make_endpoint(trial, base_url=fake_model.url)
    case = screened(trial, tmp_path / "src")
    enrol(case, django_capture_on_commit_callbacks)
    draft = Draft.objects.get(case=case)
    assert (draft.status, draft.attempts) == (Draft.Status.DONE, 1)
    assert len(fake_model.requests) == 1


def test_enrolment_without_an_active_endpoint_queues_nothing(
        trial, tmp_path, fake_model, django_capture_on_commit_callbacks) -> None:
    make_endpoint(trial, base_url=fake_model.url, active=False)
    case = screened(trial, tmp_path / "src")
    enrol(case, django_capture_on_commit_callbacks)
    assert not Draft.objects.exists()
    assert fake_model.requests == []


def test_a_broker_that_is_down_loses_no_draft(
        trial, tmp_path, fake_model, django_capture_on_commit_callbacks) -> None:
    make_endpoint(trial, base_url=fake_model.url)
    case = screened(trial, tmp_path / "src")
    with celery_on_redis(f"redis://127.0.0.1:{closed_port()}/0"):
        started = time.monotonic()
        enrol(case, django_capture_on_commit_callbacks)
        assert time.monotonic() - started < SEND_BOUND_S  # enrolment is not held up
    case.refresh_from_db()
    assert case.status == Case.Status.ENROLLED
    draft = Draft.objects.get(case=case)
    assert (draft.status, draft.sent_at) == (Draft.Status.QUEUED, None)
    assert fake_model.requests == []
    assert tasks.sweep() == 1  # the broker is back (eager again)
    draft.refresh_from_db()
    assert draft.status == Draft.Status.DONE


def test_sweep_sends_missing_and_stale_drafts_but_not_fresh_ones(
        trial, tmp_path, fake_model) -> None:
    endpoint = make_endpoint(trial, base_url=fake_model.url)
    folder = tmp_path / "src"
    missing, stale, fresh = (imported_case(trial, trial.sites.get(), folder, seed=s)
                             for s in (1, 2, 3))
    not_enrolled = imported_case(trial, trial.sites.get(), folder, seed=4, enrolled=False)
    now = timezone.now()
    for case, sent_at in [(stale, now - queue.STALE - timedelta(minutes=1)), (fresh, now)]:
        Draft.objects.filter(pk=queue.ensure_draft(case, endpoint).pk).update(sent_at=sent_at)
    assert tasks.sweep() == 2
    status = dict(Draft.objects.values_list("case", "status"))
    assert status == {missing.pk: Draft.Status.DONE, stale.pk: Draft.Status.DONE,
                      fresh.pk: Draft.Status.QUEUED}
    assert not_enrolled.pk not in status
    assert len(fake_model.requests) == 2


# --- a broker that is down or hung: a send gives up at once (security issue 11) -------------

@pytest.fixture
def silent_broker() -> Iterator[str]:
    """A Redis URL whose port accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@pytest.mark.parametrize("broker", ["closed", "silent"])
def test_a_send_to_a_broker_that_is_down_or_hung_gives_up_at_once_and_leaves_it_queued(
        trial, tmp_path, fake_model, silent_broker, settings, broker) -> None:
    settings.DRAFT_SEND_TIMEOUT_S = 0.5
    make_endpoint(trial, base_url=fake_model.url)
    cases = [imported_case(trial, trial.sites.get(), tmp_path / "src", seed=s) for s in (1, 2)]
    url = silent_broker if broker == "silent" else f"redis://127.0.0.1:{closed_port()}/0"
    with celery_on_redis(url):
        started = time.monotonic()
        sent = tasks.send(queue.ensure_draft(cases[0], trial.model_endpoints.get()))
        send_s = time.monotonic() - started
        started = time.monotonic()
        draft = tasks.queue_draft(cases[1])  # as enrolment calls it
        queue_s = time.monotonic() - started
    print(f"send with the broker {broker}: {send_s * 1000:.0f} ms, queue_draft "
          f"{queue_s * 1000:.0f} ms")
    assert sent is False and draft is not None
    assert send_s < SEND_BOUND_S and queue_s < SEND_BOUND_S
    assert set(Draft.objects.values_list("status", "sent_at")) == {(Draft.Status.QUEUED, None)}
    assert tasks.sweep() == 2  # the broker is back (in-process again): the sweep sends them
    assert set(Draft.objects.values_list("status", flat=True)) == {Draft.Status.DONE}


@contextlib.contextmanager
def redis_on(port: int) -> Iterator[None]:
    """A real Redis server on ``port`` for the block (killed at its end: Redis goes down)."""
    proc = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield
    finally:
        proc.kill()
        proc.wait()


def test_sends_give_up_while_redis_is_down_and_go_through_again_once_it_is_back(
        trial, tmp_path, fake_model) -> None:
    """The fail-fast producers are pooled: a connection lost with Redis is made again."""
    endpoint = make_endpoint(trial, base_url=fake_model.url)
    drafts = [queue.ensure_draft(imported_case(trial, trial.sites.get(), tmp_path / "src",
                                               seed=s), endpoint) for s in (1, 2, 3)]
    port = free_port()
    with celery_on_redis(f"redis://127.0.0.1:{port}/0", queue="drafts-no-worker"):
        with redis_on(port):
            assert tasks.send(drafts[0]) is True
        started = time.monotonic()
        assert tasks.send(drafts[1]) is False
        assert time.monotonic() - started < SEND_BOUND_S
        with redis_on(port):
            assert (tasks.send(drafts[1]), tasks.send(drafts[2])) == (True, True)
    assert Draft.objects.filter(status=Draft.Status.QUEUED, sent_at__isnull=False).count() == 3


# --- a draft whose worker died: taken over once its lease ran out (security issue 10) -------

def running(case: Case, endpoint: ModelEndpoint, *, lease_in_s: float, attempts: int = 1
            ) -> Draft:
    """The case's draft, held by a run (claim "dead-run") whose lease ends in ``lease_in_s``."""
    draft = queue.ensure_draft(case, endpoint)
    Draft.objects.filter(pk=draft.pk).update(
        status=Draft.Status.RUNNING, claim="dead-run", attempts=attempts,
        started_at=timezone.now(), lease_until=timezone.now() + timedelta(seconds=lease_in_s))
    draft.refresh_from_db()
    return draft


def test_the_takeover_check_sends_a_draft_whose_lease_ran_out_and_it_is_made(
        trial, tmp_path, fake_model) -> None:
    endpoint = make_endpoint(trial, base_url=fake_model.url)
    case = imported_case(trial, trial.sites.get(), tmp_path / "src")
    dead = running(case, endpoint, lease_in_s=-1)
    assert tasks.take_over_drafts.apply().get() == 1  # as beat has a worker run it
    draft = Draft.objects.get(pk=dead.pk)
    assert (draft.status, draft.attempts, draft.error, draft.claim) == (
        Draft.Status.DONE, 2, "", "")
    assert len(fake_model.requests) == 1
    # The dead run, had it only hung, can no longer store over it.
    assert run._store(dead, "dead-run", status=Draft.Status.FAILED, error="late") is False


def test_the_takeover_check_leaves_a_live_lease_and_other_configurations_alone(
        trial, tmp_path, fake_model) -> None:
    endpoint = make_endpoint(trial, base_url=fake_model.url)
    folder = tmp_path / "src"
    live = running(imported_case(trial, trial.sites.get(), folder, seed=1), endpoint,
                   lease_in_s=60)
    earlier = running(imported_case(trial, trial.sites.get(), folder, seed=2), endpoint,
                      lease_in_s=-60)
    Draft.objects.filter(pk=earlier.pk).update(fingerprint="0" * 16)  # an earlier configuration
    assert tasks.take_over() == 0
    for draft in (live, earlier):
        draft.refresh_from_db()
        assert (draft.status, draft.claim) == (Draft.Status.RUNNING, "dead-run")
    assert fake_model.requests == []


def test_a_draft_whose_worker_died_at_its_last_attempt_fails_audited(
        trial, tmp_path, fake_model) -> None:
    endpoint = make_endpoint(trial, base_url=fake_model.url, max_attempts=2)
    case = imported_case(trial, trial.sites.get(), tmp_path / "src")
    dead = running(case, endpoint, lease_in_s=-1, attempts=2)
    assert tasks.take_over() == 0  # failed, not sent: a draft that kills its worker must not loop
    draft = Draft.objects.get(pk=dead.pk)
    assert draft.status == Draft.Status.FAILED and draft.finished_at is not None
    assert draft.error.startswith("Gave up after 2 attempts; last: its run stopped answering")
    assert AuditEvent.objects.filter(action="draft.failed", object_id=str(draft.pk)).exists()
    assert fake_model.requests == []


def test_the_sweep_takes_over_a_lease_that_just_ran_out_not_15_minutes_later(
        trial, tmp_path, fake_model) -> None:
    endpoint = make_endpoint(trial, base_url=fake_model.url)
    dead = running(imported_case(trial, trial.sites.get(), tmp_path / "src"), endpoint,
                   lease_in_s=-1)
    assert tasks.sweep() == 1
    assert Draft.objects.get(pk=dead.pk).status == Draft.Status.DONE


def production_defaults(tmp_path) -> dict:
    """The drafting settings as a production process without DRAFT_* variables reads them."""
    code = ("import json\nfrom django.conf import settings as s\n"
            "print(json.dumps({k: getattr(s, k) for k in dir(s)\n"
            "                  if k.startswith(('DRAFT_', 'CELERY_BEAT', 'CELERY_BROKER_TR'))}))")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "a-test-secret-key",
           "DATA_DIR": str(tmp_path / "data"), "REDIS_URL": "redis://redis.example:6379/0"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_by_default_beat_checks_leases_often_enough_for_a_takeover_within_a_minute(
        tmp_path) -> None:
    """The README's rule: a draft is taken over once its lease (model timeout + margin) has
    run out; the check runs every DRAFT_TAKEOVER_SECONDS, the sweep too applies the rule."""
    got = production_defaults(tmp_path)
    (check,) = [entry for entry in got["CELERY_BEAT_SCHEDULE"].values()
                if entry["task"] == tasks.take_over_drafts.name]
    assert (got["DRAFT_LEASE_MARGIN_S"], got["DRAFT_TAKEOVER_SECONDS"]) == (30, 15)
    assert check["schedule"] == got["DRAFT_TAKEOVER_SECONDS"]
    assert check["options"]["expires"] > 2 * check["schedule"]  # not dropped behind busy workers
    assert got["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] == 3600  # not the rescue
    assert "max_retries" not in got["CELERY_BROKER_TRANSPORT_OPTIONS"]  # Celery's own: unchanged
    assert got["DRAFT_SEND_TIMEOUT_S"] == 1
    assert {tasks.take_over_drafts.name, tasks.sweep_drafts.name} <= set(app.tasks)
