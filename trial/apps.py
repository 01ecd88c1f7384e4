from django.apps import AppConfig


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial set-up"

    def ready(self) -> None:
        from .enrolment import case_enrolled

        case_enrolled.connect(_queue_draft, dispatch_uid="trial.queue_draft")


def _queue_draft(sender, case, **kwargs) -> None:
    """Pre-generation: an enrolled case's AI draft is queued as soon as enrolment commits."""
    from .drafting.pipeline import queue_draft

    queue_draft(case)
