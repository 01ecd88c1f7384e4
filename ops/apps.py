from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations (health, metrics)"

    def ready(self) -> None:
        """Counts read from the database and Redis join the process's metrics, computed only
        when /metrics is scraped (never at start-up, never in a worker that is not scraped)."""
        from prometheus_client import REGISTRY

        from .metrics import StateCollector

        REGISTRY.register(StateCollector())
