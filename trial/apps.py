from django.apps import AppConfig


class TrialConfig(AppConfig):
    name = "trial"
    verbose_name = "Trial set-up"

    def ready(self) -> None:
        """Sign-in lockouts go on the trial's audit record."""
        from axes.signals import user_locked_out

        from .accounts import record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="trial.record_lockout")
