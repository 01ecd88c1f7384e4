"""Prometheus metrics: requests counted and timed per view, and the platform's queues counted
from the database and Redis at scrape time (no counter to keep in step with the tables).

Request metrics live in each process (the compose stack runs one gunicorn process); the counts
from the database are the same whichever process is scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from .health import free_bytes, redis_client

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUESTS = Counter("cxr_http_requests", "HTTP requests answered, by method, view and status.",
                   ["method", "view", "status"])
LATENCY = Histogram("cxr_http_request_duration_seconds",
                    "Time to answer an HTTP request, by view (middleware included).", ["view"],
                    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))

# kombu's Redis transport keeps a queue's messages of priority p > 0 in "<queue>\x06\x16<p>"
# (its default priority steps 0, 3, 6, 9); priority 0, the default, in "<queue>" itself.
PRIORITY_SEP = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


def observe_request(method: str, view: str, status: int, seconds: float) -> None:
    """Count one answered request. Labels are bounded: the view's name, never the path."""
    method = method if method in METHODS else "other"
    REQUESTS.labels(method, view, str(status)).inc()
    LATENCY.labels(view).observe(seconds)


def _by_status(model) -> dict[str, int]:
    """Rows of ``model`` per status, every status present (0 when there is none)."""
    counts = dict.fromkeys(model.Status.values, 0)
    rows = model.objects.order_by().values_list("status").annotate(n=Count("pk"))
    counts.update({status: n for status, n in rows})
    return counts


def _status_gauge(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in counts.items():
        gauge.add_metric([status], n)
    return gauge


def celery_queue_length(queue: str) -> int:
    """Messages waiting in ``queue`` on the broker (taken but unacknowledged ones excluded)."""
    client = redis_client()
    try:
        pipe = client.pipeline(transaction=False)
        for priority in PRIORITY_STEPS:
            pipe.llen(queue if priority == 0 else f"{queue}{PRIORITY_SEP}{priority}")
        return sum(pipe.execute())
    finally:
        client.close()


class StateCollector:
    """Gauges computed when scraped: drafts, report deliveries and import jobs by status, the
    draft queue, the Celery queue in Redis and free disk for MEDIA_ROOT. A source that fails
    reports ``cxr_*_up 0`` and leaves its gauges out; the scrape itself never fails."""

    def describe(self) -> list:
        return []  # nothing is read at registration (start-up, migrations, workers)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._database()
        yield from self._redis()
        try:
            free = free_bytes(settings.MEDIA_ROOT)
        except OSError:
            log.warning("metrics: free disk of MEDIA_ROOT unknown", exc_info=True)
        else:
            yield GaugeMetricFamily("cxr_media_free_bytes",
                                    "Free disk space where MEDIA_ROOT is.", value=free)

    def _database(self) -> Iterator[GaugeMetricFamily]:
        from drafting.models import Draft
        from pacs.models import ReportDelivery
        from trial.models import ImportJob

        try:
            drafts = _by_status(Draft)
            deliveries = _by_status(ReportDelivery)
            imports = _by_status(ImportJob)
        except Exception:
            log.warning("metrics: the database could not be read", exc_info=True)
            yield GaugeMetricFamily("cxr_database_up", "1 when the counts below could be read.",
                                    value=0)
            return
        yield GaugeMetricFamily("cxr_database_up", "1 when the counts below could be read.",
                                value=1)
        yield _status_gauge("cxr_drafts", "AI drafts by status.", drafts)
        yield GaugeMetricFamily(
            "cxr_draft_queue_length", "AI drafts waiting or being made (queued + running).",
            value=drafts[Draft.Status.QUEUED] + drafts[Draft.Status.RUNNING])
        yield GaugeMetricFamily("cxr_drafts_failed", "AI drafts that failed (not yet retried).",
                                value=drafts[Draft.Status.FAILED])
        yield _status_gauge("cxr_report_deliveries",
                            "Final reports sent to sites' PACS, by status.", deliveries)
        yield _status_gauge("cxr_import_jobs", "DICOM import jobs by status.", imports)

    def _redis(self) -> Iterator[GaugeMetricFamily]:
        if not settings.REDIS_URL:
            return  # tasks run in-process: there is no queue to count
        from config.celery import app

        queue = app.conf.task_default_queue
        try:
            length = celery_queue_length(queue)
        except Exception:
            log.warning("metrics: Redis could not be read", exc_info=True)
            yield GaugeMetricFamily("cxr_redis_up", "1 when Redis answered.", value=0)
            return
        yield GaugeMetricFamily("cxr_redis_up", "1 when Redis answered.", value=1)
        gauge = GaugeMetricFamily("cxr_celery_queue_length",
                                  "Tasks waiting in the Celery queue in Redis.", labels=["queue"])
        gauge.add_metric([queue], length)
        yield gauge
