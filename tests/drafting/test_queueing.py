"""Enrolment queues the AI draft on commit; a broker that is down loses nothing (the sweep)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from drafting import queue, tasks
from drafting.models import Draft
from tests.support.celery_helpers import celery_on_redis
from tests.support.draft_world import closed_port, imported_case, make_endpoint
from tests.support.factories import CriterionFactory, SiteFactory, UserFactory
from trial import enrolment
from trial.models import Case, Trial


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
        enrol(case, django_capture_on_commit_callbacks)
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
