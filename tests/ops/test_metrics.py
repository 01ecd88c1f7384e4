"""/metrics: only with the bearer token; the gauges equal the rows and Redis messages made here
(on the suite's real PostgreSQL and Redis), parsed with prometheus_client's own parser."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from drafting.models import Draft, ModelEndpoint
from pacs.models import ReportDelivery
from tests.ops.support import redis_db
from tests.support.celery_helpers import celery_on_redis
from tests.support.celery_tasks import add
from tests.support.factories import CaseFactory, SiteFactory, TrialFactory
from tests.support.servers import free_port
from trial.models import ImportJob

pytestmark = pytest.mark.django_db
TOKEN = "a-long-random-metrics-token-0123456789"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def scrape(client) -> dict[str, dict[tuple, float]]:
    """name -> {labels (sorted pairs): value} for every sample of the scrape."""
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    assert "no-store" in response["Cache-Control"]
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = (
                sample.value)
    return samples


def by_status(samples: dict, name: str) -> dict[str, float]:
    return {dict(labels)["status"]: value for labels, value in samples[name].items()}


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    settings.REDIS_URL = ""
    return TOKEN


def make_drafts(statuses: list[str]) -> None:
    trial = TrialFactory()
    endpoint = ModelEndpoint.objects.create(trial=trial, name="demo",
                                            backend=ModelEndpoint.Backend.DEMO)
    for status in statuses:  # one draft per case and endpoint configuration
        Draft.objects.create(case=CaseFactory(trial=trial), endpoint=endpoint,
                             fingerprint=endpoint.fingerprint, config=endpoint.config(),
                             backend=endpoint.backend, status=status, queued_at=timezone.now())


def test_metrics_do_not_exist_without_a_token_configured(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    assert client.get("/metrics", **AUTH).status_code == 404


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong-token",
                                    f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}",
                                    TOKEN])
def test_a_missing_or_wrong_token_is_refused(client, token: str, header: str | None) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 403
    assert b"cxr_" not in response.content


def test_the_gauges_count_the_rows(client, token: str, settings) -> None:
    make_drafts(["queued", "queued", "running", "failed", "done"])
    site = SiteFactory()
    for status in ("running", "failed", "failed", "done"):
        ImportJob.objects.create(trial=site.trial, site=site, source="x", status=status)
    client.get("/health/live/")  # counted below

    samples = scrape(client)
    assert samples["cxr_database_up"] == {(): 1.0}
    assert by_status(samples, "cxr_drafts") == {
        "queued": 2.0, "running": 1.0, "done": 1.0, "failed": 1.0}
    assert samples["cxr_draft_queue_length"] == {(): 3.0}
    assert samples["cxr_drafts_failed"] == {(): 1.0}
    assert by_status(samples, "cxr_import_jobs") == {
        "queued": 0.0, "running": 1.0, "done": 1.0, "failed": 2.0}
    assert by_status(samples, "cxr_report_deliveries") == dict.fromkeys(
        ReportDelivery.Status.values, float(ReportDelivery.objects.count()))
    # Without REDIS_URL tasks run in-process: no queue, no Redis to report on.
    assert "cxr_celery_queue_length" not in samples and "cxr_redis_up" not in samples
    # MEDIA_ROOT is not made yet: its parent's disk is measured.
    free = samples["cxr_media_free_bytes"][()]
    assert abs(free - shutil.disk_usage(Path(settings.MEDIA_ROOT).parent).free) < 256 * 2**20
    # Requests counted by view name (never the path) and timed.
    live = samples["cxr_http_requests_total"][
        (("method", "GET"), ("status", "200"), ("view", "ops:live"))]
    assert live >= 1
    assert samples["cxr_http_request_duration_seconds_count"][(("view", "ops:live"),)] >= 1

    Draft.objects.filter(status="queued").update(status="running")
    Draft.objects.filter(status="failed").update(status="queued")
    samples = scrape(client)
    assert samples["cxr_draft_queue_length"] == {(): 4.0}
    assert samples["cxr_drafts_failed"] == {(): 0.0}


def test_the_celery_queue_length_is_read_from_redis(client, token: str, settings,
                                                    redis_url: str) -> None:
    url = redis_db(redis_url, 7)
    settings.REDIS_URL = url
    with celery_on_redis(url):  # no worker: the messages wait in the default queue
        for n in range(3):
            add.delay(n, n)
        samples = scrape(client)
    assert samples["cxr_redis_up"] == {(): 1.0}
    assert samples["cxr_celery_queue_length"] == {(("queue", "celery"),): 3.0}


def test_a_dead_redis_is_reported_and_the_scrape_still_answers(client, token: str,
                                                               settings) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    samples = scrape(client)
    assert samples["cxr_redis_up"] == {(): 0.0}
    assert "cxr_celery_queue_length" not in samples
    assert samples["cxr_database_up"] == {(): 1.0}


def test_metrics_skip_the_host_check(client, token: str, settings) -> None:
    """Prometheus scrapes http://web:8000/metrics inside the deployment."""
    settings.ALLOWED_HOSTS = ["trial.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/metrics", HTTP_HOST="web:8000", **AUTH)
    assert response.status_code == 200
    assert client.get("/metrics", HTTP_HOST="web:8000").status_code == 403
