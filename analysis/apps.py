from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self) -> None:
        """The report metrics (``metrics``, below this app) take their CIs' level from the
        signed analysis plan: give them ``plan_alpha`` (``metrics`` never imports analysis)."""
        from metrics import levels

        from .plans import plan_alpha

        levels.register(plan_alpha)
