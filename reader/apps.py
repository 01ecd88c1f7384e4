from django.apps import AppConfig


class ReaderConfig(AppConfig):
    name = "reader"
    verbose_name = "Reading"

    def ready(self) -> None:
        """The case's admin page (``trial``, which never imports ``reader``) shows its readings
        and its review."""
        from trial.admin.cases import CaseAdmin

        from .admin_case import readings_panel, review_panel

        CaseAdmin.add_panel("readings", "Readings", readings_panel,
                            description="assignments and readings")
        CaseAdmin.add_panel("senior_review", "Senior review", review_panel,
                            description="final report")
