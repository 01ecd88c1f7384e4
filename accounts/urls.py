"""Two-factor pages, under ``/accounts/two-factor/`` (see ``config/urls.py``)."""

from django.urls import path

from . import views

app_name = "two_factor"
urlpatterns = [
    path("", views.manage, name="manage"),
    path("verify/", views.verify, name="verify"),
    path("setup/", views.setup, name="setup"),
    path("recovery-codes/", views.renew_codes, name="renew_codes"),
    path("turn-off/", views.turn_off, name="turn_off"),
]
