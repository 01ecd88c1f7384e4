"""Notify's Celery side (the only module here that knows Celery): the periodic task that sends
the summary e-mails that are due (``notify.send.send_due``). Put it on the beat schedule, e.g.
hourly; running it more often than the trials' intervals sends nothing twice."""

from __future__ import annotations

from celery import shared_task

from .send import send_due


@shared_task(name="notify.tasks.send_notifications", ignore_result=True)
def send_notifications() -> dict:
    """Periodic (celery beat): send the notification e-mails that are due; returns the counts."""
    return send_due().as_dict()
