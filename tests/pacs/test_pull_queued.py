"""With a broker, the admin's pull runs on a real Celery worker against the real Orthanc: the
form answers at once with the run's page, which follows it (progress bar, reloading while it
runs) to each line's outcome; the accession numbers cross the broker sealed, never in clear.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from pacs import pull
from pacs.models import PullItem, PullRun
from tests.pacs.test_pull import put, web_node
from tests.support.celery_helpers import celery_on_redis, celery_worker, wait_ready
from tests.support.trial_world import build_world
from trial.models import Image

pytestmark = pytest.mark.usefixtures("transactional_db")
Status = PullItem.Status


@pytest.fixture
def world(transactional_db):
    return build_world()


@pytest.fixture
def worker(redis_url, postgres, settings, tmp_path) -> Iterator[Path]:
    queue, log = f"pull-{uuid.uuid4().hex[:10]}", tmp_path / "worker.log"
    settings.MEDIA_ROOT = tmp_path / "media"
    name = django_settings.DATABASES["default"]["NAME"]
    env = {
        "DATABASE_URL": f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}",
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": settings.SECRET_KEY,  # the sealed list's key is derived from it
    }
    with celery_on_redis(redis_url, queue=queue), \
            celery_worker(redis_url=redis_url, queue=queue, log=log, env=env) as proc:
        wait_ready(proc, log)
        yield log


def test_the_admin_pull_runs_on_a_worker_and_its_page_follows_it(world, worker,
                                                                  empty_orthanc,
                                                                  tmp_path) -> None:
    node = web_node(world.site, empty_orthanc.dicomweb_url)
    node.retrieve = True
    node.save()
    put(empty_orthanc, tmp_path, "QUEUED001", 2)
    client = world.client("coordinator")
    response = client.post(reverse("admin:pacs_remotenode_pull", args=[node.pk]),
                           {"accessions": "QUEUED001\nNOSUCH9\n"})
    run = PullRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:pacs_pullrun_change", args=[run.pk])

    deadline = time.monotonic() + 60
    while PullRun.objects.get().status == PullRun.Status.RUNNING:
        page = client.get(response["Location"]).content.decode()
        assert '<meta http-equiv="refresh" content="3">' in page  # follows it while running
        assert "<progress" in page
        assert time.monotonic() < deadline, "the worker's pull did not finish"
        time.sleep(0.2)

    run.refresh_from_db()
    assert run.status == PullRun.Status.DONE and (run.processed, run.total) == (2, 2)
    assert list(run.items.values_list("line", "status")) == [(1, Status.IMPORTED),
                                                             (2, Status.NOT_FOUND)]
    assert run.items.get(line=1).case.images.count() == 2
    page = client.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in page  # done: the page stays still
    assert '<progress max="2" value="2">' in page
    assert "no study with this accession number" in page
    assert b"pacs.tasks.pull_accessions" in worker.read_bytes()
    assert b"QUEUED001" not in worker.read_bytes()


def test_the_sealed_list_hides_the_numbers_and_needs_the_same_secret_key(settings) -> None:
    sealed = pull.seal({"1": "ACC-SECRET-1", "3": "ACC-SECRET-3"})
    assert "ACC-SECRET" not in sealed
    assert pull.unseal(sealed) == {"1": "ACC-SECRET-1", "3": "ACC-SECRET-3"}
    settings.SECRET_KEY = "another-secret-key-entirely"
    with pytest.raises(pull.PullError, match="could not be read"):
        pull.unseal(sealed)


def test_a_queued_pull_refused_at_the_form_queues_nothing(world, redis_url) -> None:
    from pacs.models import RemoteNode

    node = RemoteNode.objects.create(site=world.site, name="no-retrieve", protocol="dicomweb",
                                     base_url="http://127.0.0.1:9/dicom-web", retrieve=False)
    with celery_on_redis(redis_url, queue=f"nobody-{uuid.uuid4().hex[:8]}"):
        client = world.client("coordinator")
        url = reverse("admin:pacs_remotenode_pull", args=[node.pk])
        response = client.post(url, {"accessions": "X1\n"})
    assert response.status_code == 200
    assert "not configured for retrieval" in response.content.decode()
    assert not PullRun.objects.exists()


def test_a_run_taken_twice_is_done_once(world, empty_orthanc, tmp_path) -> None:
    node = web_node(world.site, empty_orthanc.dicomweb_url)
    node.retrieve = True
    node.save()
    put(empty_orthanc, tmp_path, "TWICE0001", 1)
    run, sealed = pull.queue_pull(world.site, node, ["TWICE0001"])
    assert pull.run_queued(run, sealed).status == PullRun.Status.DONE
    again = pull.run_queued(PullRun.objects.get(pk=run.pk), sealed)
    assert again.items.count() == 1
    assert Image.objects.filter(case=again.items.get().case).count() == 1
