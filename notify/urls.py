"""``/notifications/``: a signed-in person turns their notification e-mails on or off
(``notify:preferences``)."""

from django.urls import path

from . import views

app_name = "notify"
urlpatterns = [
    path("", views.preferences_page, name="preferences"),
]
