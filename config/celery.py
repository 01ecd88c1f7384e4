"""The Celery app. Workers run ``celery -A config worker``; without REDIS_URL tasks run eagerly."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Each task in a worker is like a web request: drop database connections that are broken
    or past DATABASE_CONN_MAX_AGE, keep the others (settings.CELERY_DB_REUSE_MAX). Not for a
    task run in-process: it may be inside the caller's transaction."""
    if task is None or getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
