from django.apps import AppConfig


class MetricsConfig(AppConfig):
    """Automated report metrics: labellers, label sets, text and finding metrics, the judge."""

    name = "metrics"
    verbose_name = "Report generation metrics"
