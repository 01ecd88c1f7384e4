"""A draft's work done ahead and in few statements (issue 17): the model's PNG is made at import
and only read by the draft; the claim and the store are one statement each, and keep every
guarantee of the claim/lease/store protocol (``test_pipeline`` tests the rest of it).

Against a real PostgreSQL and a real OpenAI-compatible HTTP server (``fake_model``).
"""

from __future__ import annotations

import base64
import io
import logging
from datetime import timedelta

import numpy as np
import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image as PILImage

from drafting import limits, preprocess, queue, run
from drafting.models import Draft
from tests.support.draft_world import DraftWorld, draft_world, imported_case, make_endpoint
from tests.support.factories import SiteFactory
from trial import audit
from trial.dicom.render import display_pixels
from trial.models import AuditEvent, Image


@pytest.fixture
def world(db, tmp_path, fake_model) -> DraftWorld:
    return draft_world(tmp_path / "src", fake_model.url)


def sent_png(fake_model) -> bytes:
    """The PNG the model server received in the last request."""
    (part,) = [p for p in fake_model.requests[-1].body["messages"][0]["content"]
               if p["type"] == "image_url"]
    return base64.b64decode(part["image_url"]["url"].removeprefix("data:image/png;base64,"))


def independent_rendering(image: Image, *, size: int = 384, pad: int = 127) -> np.ndarray:
    """The reference preprocessing from the stored file, written out again here: the DICOM
    window, long side scaled to ``size`` (bicubic), centred on grey ``pad``, RGB."""
    with image.file.open("rb") as fh:
        shown = display_pixels(pydicom.dcmread(fh))
    height, width = shown.shape
    scale = size / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    scaled = np.asarray(PILImage.fromarray(shown).resize((new_w, new_h),
                                                         PILImage.Resampling.BICUBIC))
    out = np.full((size, size), pad, dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = scaled
    return np.stack([out] * 3, axis=-1)


def pixels(png: bytes) -> np.ndarray:
    picture = PILImage.open(io.BytesIO(png))
    assert (picture.format, picture.mode) == ("PNG", "RGB")
    return np.asarray(picture)


def no_rendering(monkeypatch) -> None:
    """Make any rendering of the DICOM file by a draft fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the draft rendered the DICOM file")
    monkeypatch.setattr(preprocess, "dataset_png", refuse)


# --- the model's PNG, made at import ----------------------------------------------------------

def test_the_import_makes_the_models_png_and_the_draft_sends_it_without_rendering(
        world, fake_model, monkeypatch) -> None:
    image = world.case.images.get()
    made = preprocess.model_png_path(image, size=384, pad=127)
    assert made.exists()  # before any draft
    no_rendering(monkeypatch)
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    assert sent_png(fake_model) == made.read_bytes()
    assert np.array_equal(pixels(made.read_bytes()), independent_rendering(image))


def test_a_tall_image_made_at_import_matches_an_independent_rendering(db, tmp_path) -> None:
    site = SiteFactory()
    image = imported_case(site.trial, site, tmp_path / "src", seed=7, rows=300,
                          columns=200).images.get()
    made = preprocess.model_png_path(image).read_bytes()
    assert np.array_equal(pixels(made), independent_rendering(image))
    assert (pixels(made)[:, :64] == 127).all()  # 256 x 384 centred: padding either side


def test_the_import_prepares_the_size_and_pad_of_the_trials_active_endpoint(
        db, tmp_path, fake_model, monkeypatch) -> None:
    site = SiteFactory()
    make_endpoint(site.trial, base_url=fake_model.url, image_size=200, pad_value=0)
    case = imported_case(site.trial, site, tmp_path / "src", seed=3, rows=120, columns=100)
    image = case.images.get()
    made = preprocess.model_png_path(image, size=200, pad=0)
    assert made.exists()
    assert not preprocess.model_png_path(image).exists()  # not the defaults: not used here
    assert np.array_equal(pixels(made.read_bytes()),
                          independent_rendering(image, size=200, pad=0))
    no_rendering(monkeypatch)
    run.run_draft(case.pk)
    assert sent_png(fake_model) == made.read_bytes()


def test_an_image_without_the_png_gets_it_rendered_by_its_draft_then_kept(
        world, fake_model) -> None:
    """Imported before the PNG was made at import (or the file deleted): made as before."""
    image = world.case.images.get()
    made = preprocess.model_png_path(image)
    made.unlink()
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    assert np.array_equal(pixels(sent_png(fake_model)), independent_rendering(image))
    assert made.read_bytes() == sent_png(fake_model)  # kept for the next draft


def test_a_new_image_size_is_rendered_by_the_first_draft_that_needs_it(
        world, fake_model) -> None:
    image = world.case.images.get()
    world.endpoint.image_size, world.endpoint.pad_value = 160, 30
    world.endpoint.save()
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    assert np.array_equal(pixels(sent_png(fake_model)),
                          independent_rendering(image, size=160, pad=30))
    assert preprocess.model_png_path(image, size=160, pad=30).exists()


def test_a_failure_making_the_png_at_import_never_fails_the_import(
        db, tmp_path, fake_model, monkeypatch, caplog) -> None:
    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(preprocess, "prepare_pngs", broken)
    site = SiteFactory()
    endpoint = make_endpoint(site.trial, base_url=fake_model.url)
    with caplog.at_level(logging.WARNING, logger="trial.dicom.importer"):
        case = imported_case(site.trial, site, tmp_path / "src", seed=4)  # asserts imported
    assert "disk full" in caplog.text
    image = case.images.get()
    assert not preprocess.model_png_path(image).exists()
    monkeypatch.undo()
    queue.ensure_draft(case, endpoint)
    assert run.run_draft(case.pk).status == Draft.Status.DONE  # the draft makes it
    assert np.array_equal(pixels(sent_png(fake_model)), independent_rendering(image))


def test_the_png_name_carries_the_preprocessing_version_size_and_pad(world) -> None:
    image = world.case.images.get()
    path = preprocess.model_png_path(image, size=512, pad=0)
    assert path.parent.name == image.sha256
    assert path.name == f"model-v{preprocess.PNG_VERSION}-512-pad0.png"


# --- the claim: one statement, same guarantees -------------------------------------------------

def test_a_draft_takes_three_statements_read_claim_and_store_with_its_event(
        world, fake_model) -> None:
    queue.ensure_draft(world.case, world.endpoint)
    with CaptureQueriesContext(connection) as queries:
        assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    assert statements == ["SELECT", "UPDATE", "WITH"], statements
    assert AuditEvent.objects.filter(action="draft.done").count() == 1


def test_a_claim_takes_a_queued_draft_with_a_lease_of_the_call_only(world) -> None:
    before = timezone.now()
    draft, claim, wait = run._claim(world.case.pk, world.endpoint)
    stored = Draft.objects.get(pk=draft.pk)
    assert (stored.status, stored.claim, stored.attempts, wait) == (
        Draft.Status.RUNNING, claim, 1, None)
    assert stored.started_at >= before
    lease = stored.lease_until - stored.started_at
    assert lease == timedelta(seconds=world.endpoint.timeout_s) + run.lease_margin()


def test_a_second_claim_is_refused_while_the_first_ones_lease_is_live(world) -> None:
    first, claim, _ = run._claim(world.case.pk, world.endpoint)
    again, none, wait = run._claim(world.case.pk, world.endpoint)
    assert none is None and again.claim == claim
    assert 0 < wait <= world.endpoint.timeout_s + run.lease_margin().total_seconds() + 0.5
    assert Draft.objects.get(pk=first.pk).attempts == 1  # the refused claim wrote nothing


@pytest.mark.parametrize("status", [Draft.Status.DONE, Draft.Status.FAILED])
def test_a_finished_draft_is_never_claimed_again(world, fake_model, status) -> None:
    draft = queue.ensure_draft(world.case, world.endpoint)
    Draft.objects.filter(pk=draft.pk).update(status=status, findings="kept")
    outcome = run.run_draft(world.case.pk)
    assert (outcome.status, outcome.retry_in) == (status, None)
    assert Draft.objects.get(pk=draft.pk).findings == "kept"
    assert fake_model.requests == []


def test_a_claim_makes_the_row_when_none_was_queued(world) -> None:
    assert not Draft.objects.exists()
    draft, claim, _ = run._claim(world.case.pk, world.endpoint)
    assert claim and Draft.objects.get().status == Draft.Status.RUNNING
    assert draft.fingerprint == world.endpoint.fingerprint


def test_a_running_draft_without_a_lease_is_taken(world) -> None:
    draft = queue.ensure_draft(world.case, world.endpoint)
    Draft.objects.filter(pk=draft.pk).update(status=Draft.Status.RUNNING, claim="old",
                                             lease_until=None, attempts=1)
    taken, claim, _ = run._claim(world.case.pk, world.endpoint)
    assert claim not in (None, "old") and taken.attempts == 2


def test_no_free_slot_leaves_the_draft_queued_and_unclaimed(world, fake_model, settings,
                                                           monkeypatch) -> None:
    settings.REDIS_URL = ""
    monkeypatch.setattr(run, "SLOT_WAIT_S", 0.05)
    draft = queue.ensure_draft(world.case, world.endpoint)
    with AllSlots(world):
        outcome = run.run_draft(world.case.pk)
    assert outcome.status == Draft.Status.QUEUED and outcome.retry_in > 0
    stored = Draft.objects.get(pk=draft.pk)
    assert (stored.status, stored.claim, stored.attempts) == (Draft.Status.QUEUED, "", 0)
    assert fake_model.requests == []


class AllSlots:
    """Hold every in-process slot of the world's endpoint."""

    def __init__(self, world: DraftWorld) -> None:
        self.held = [limits.model_slot(world.endpoint.pk, limit=world.endpoint.concurrency,
                                       hold_s=5, wait_s=0.1)
                     for _ in range(world.endpoint.concurrency)]

    def __enter__(self) -> None:
        for slot in self.held:
            slot.__enter__()

    def __exit__(self, *exc) -> None:
        for slot in reversed(self.held):
            slot.__exit__(None, None, None)


# --- the store: one statement, with its audit event --------------------------------------------

def test_a_store_is_refused_for_a_draft_no_longer_running_even_with_its_claim(world) -> None:
    draft, claim, _ = run._claim(world.case.pk, world.endpoint)
    Draft.objects.filter(pk=draft.pk).update(status=Draft.Status.DONE, findings="first")
    assert run._store(draft, claim, status=Draft.Status.FAILED, error="late") is False
    assert run._store(draft, claim, status=Draft.Status.QUEUED, error="late") is False
    stored = Draft.objects.get(pk=draft.pk)
    assert (stored.status, stored.findings, stored.error) == (Draft.Status.DONE, "first", "")
    assert not AuditEvent.objects.filter(action__startswith="draft.").exists()
    assert draft.status == Draft.Status.RUNNING  # the refused values are not kept on it


def test_a_refused_store_writes_no_audit_event(world) -> None:
    draft, claim, _ = run._claim(world.case.pk, world.endpoint)
    assert run._store(draft, "another-claim", status=Draft.Status.DONE, findings="x") is False
    assert not AuditEvent.objects.filter(action="draft.done").exists()
    assert Draft.objects.get(pk=draft.pk).status == Draft.Status.RUNNING


def event_fields(event: AuditEvent) -> dict:
    return {name: getattr(event, name) for name in (
        "trial_id", "actor_id", "action", "object_type", "object_id", "object_repr", "before",
        "after")}


def test_the_single_statement_store_writes_the_event_audit_record_would(
        world, monkeypatch) -> None:
    draft, claim, _ = run._claim(world.case.pk, world.endpoint)
    assert run._store(draft, claim, status=Draft.Status.FAILED, error="why",
                      finished_at=timezone.now()) is True
    event = AuditEvent.objects.get(action="draft.failed")
    assert event.at is not None and abs(event.at - timezone.now()) < timedelta(seconds=30)
    expected = audit.record(**run.ended_record(draft))  # what the ORM path writes
    assert event_fields(event) == event_fields(expected)
    assert event.after == {"fingerprint": world.endpoint.fingerprint, "backend": "openai",
                           "attempts": 1, "error": "why", "warning": ""}
    assert event.object_repr == f"Draft of {world.case.case_id} (failed)"
    assert event.trial_id == world.trial.pk


def test_without_the_single_statement_the_store_and_its_event_are_one_transaction(
        world, fake_model, monkeypatch) -> None:
    """The path SQLite (the demo) takes; here on PostgreSQL."""
    monkeypatch.setattr(run, "single_statement_store", lambda: False)
    queue.ensure_draft(world.case, world.endpoint)
    with CaptureQueriesContext(connection) as queries:
        assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # (the test's own transaction makes the store's a savepoint)
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == [
        "SELECT", "UPDATE", "UPDATE", "INSERT"]
    draft = Draft.objects.get()
    assert (draft.status, draft.claim, draft.lease_until) == (Draft.Status.DONE, "", None)
    event = AuditEvent.objects.get(action="draft.done")
    assert event.after["attempts"] == 1 and event.object_id == str(draft.pk)
    stale = Draft.objects.get(pk=draft.pk)
    assert run._store(stale, "gone", status=Draft.Status.FAILED, error="late") is False
    assert AuditEvent.objects.filter(action="draft.failed").count() == 0


def test_a_done_draft_stores_everything_it_did_before(world, fake_model) -> None:
    assert run.run_draft(world.case.pk).status == Draft.Status.DONE
    draft = Draft.objects.get()
    assert draft.findings and draft.impression and draft.raw_response
    assert (draft.claim, draft.lease_until, draft.error, draft.attempts) == ("", None, "", 1)
    assert draft.model_reported == "fake-cxr-model"
    assert draft.started_at <= draft.finished_at
    assert draft.total_latency_ms >= draft.model_latency_ms >= 0
    assert draft.endpoint_id == world.endpoint.pk
