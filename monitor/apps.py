from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "monitor"
    verbose_name = "Trial dashboard"

    def ready(self) -> None:
        """The home page (``reader``, below this app) links the dashboard for coordinators and
        statisticians: added here, as ``reader`` never imports ``monitor``."""
        from reader import views

        from .links import home_link

        views.home_extras.append(home_link)
