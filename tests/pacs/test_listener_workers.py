"""With a broker, the listener only receives: a real Celery worker process imports each quiet
study (``pacs.tasks.import_received``); a broker that is down loses nothing (the listener
imports the study itself); a handed-off study that stays in the spool is handed off again.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from pacs import intake, tasks
from pacs.listener import Listener
from tests.pacs import test_listener
from tests.pacs.test_listener import (
    LISTENER_AET,
    QUIET,
    imported,
    send,
    spooled,
    study,
    wait_until,
)
from tests.support.celery_helpers import celery_on_redis, celery_worker, wait_ready
from trial.models import Image, ImportJob

pytestmark = pytest.mark.usefixtures("transactional_db")
site = test_listener.site  # the same fixture: a site whose sender's AE title is known


@pytest.fixture
def shared(settings, tmp_path) -> dict[str, Path]:
    """A spool and media root the listener (this process) and the worker share."""
    folders = {"spool": tmp_path / "spool", "media": tmp_path / "media"}
    settings.DICOM_SPOOL_DIR = folders["spool"]
    settings.MEDIA_ROOT = folders["media"]
    settings.DICOM_STUDY_QUIET_SECONDS = QUIET
    return folders


@pytest.fixture
def worker(redis_url, postgres, shared, tmp_path) -> Iterator[Path]:
    """A real worker process on a queue of this test; the test's tasks go there."""
    queue, log = f"pacs-{uuid.uuid4().hex[:10]}", tmp_path / "worker.log"
    name = django_settings.DATABASES["default"]["NAME"]
    env = {
        "DATABASE_URL": f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}",
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(shared["media"]),
        "DICOM_SPOOL_DIR": str(shared["spool"]),
    }
    with celery_on_redis(redis_url, queue=queue), \
            celery_worker(redis_url=redis_url, queue=queue, log=log, env=env) as proc:
        wait_ready(proc, log)
        yield log


def send_a_study(tmp_path: Path, *, seed: int) -> None:
    """Two instances of one study to a running listener, then wait until they are in."""
    listener = Listener(ae_title=LISTENER_AET, port=0, host="127.0.0.1", settle_every=0.1)
    listener.start()
    try:
        paths, _ = study(tmp_path, 2, seed=seed)
        assert send(listener, paths) == [0, 0]
        wait_until(imported(2), what="the import")
    finally:
        listener.stop()


def test_a_worker_imports_what_the_listener_received(site, shared, worker, tmp_path,
                                                     monkeypatch) -> None:
    here = []
    original = intake.import_path
    monkeypatch.setattr(intake, "import_path", lambda *a, **k: here.append(1) or original(*a, **k))
    send_a_study(tmp_path, seed=11)
    assert here == []  # nothing imported in the listener's process
    job = ImportJob.objects.get()
    assert (job.imported, job.duplicates, job.rejected) == (2, 0, 0)
    assert Image.objects.filter(case__trial=site.trial).count() == 2
    assert b"pacs.tasks.import_received" in worker.read_bytes()
    assert spooled() == []


def test_with_the_broker_down_the_listener_imports_the_study_itself(site, shared, tmp_path,
                                                                  settings) -> None:
    # A broker nobody listens on: the hand-off fails at once (DRAFT_SEND_TIMEOUT_S).
    settings.DRAFT_SEND_TIMEOUT_S = 0.5
    dead = "redis://127.0.0.1:9/0"
    with celery_on_redis(dead):
        send_a_study(tmp_path, seed=21)
    assert ImportJob.objects.get().imported == 2
    assert spooled() == []


def test_a_handed_off_study_still_in_the_spool_is_handed_off_again(site, shared,
                                                                    tmp_path) -> None:
    folder = intake.site_folder(site) / f"{intake.QUEUED}0a1b2c3d-{'e' * 32}"
    folder.mkdir(parents=True)
    fresh = intake.site_folder(site) / f"{intake.QUEUED}00000000-{'f' * 32}"
    fresh.mkdir()
    old = time.time() - 120
    os.utime(folder, (old, old))
    assert intake.stale_queued(older_than=60) == [(site, folder)]
    assert intake.stale_queued(older_than=60) == []  # handed off now: not again at once
    assert intake.waiting() == []  # a queued folder is no study waiting for its quiet time


def test_the_import_task_refuses_what_is_not_a_queued_folder(site, shared) -> None:
    for name in ("../../etc", f"{intake.QUEUED}x/../../y", "a-study-folder"):
        assert tasks.import_received(site.pk, name) == {"status": "refused"}
    assert tasks.import_received(site.pk, f"{intake.QUEUED}gone") == {"status": "gone"}
